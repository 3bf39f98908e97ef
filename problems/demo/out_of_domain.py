"""Out-of-domain inputs for the demo's text problems, and what they expect.

The demo's text problems train on narrow text: Ding dictionary example
sentences (EN-DE, DE-EN), software messages from gettext catalogs (EN-FR)
and a few WSJ / OntoNotes trees (parsing). Whether the command token steers
the model (paper section 2.4) shows best on input unlike that training
data: `ENGLISH` and `GERMAN` are sentences written for this check (news,
science, cooking, travel, sport), none of them in the Ding dictionary or the
catalogs (tests/problems/demo/test_out_of_domain.py checks that on the
installed packages).

`expected_output(problem)` says what every output of a problem must be,
from its target space: German for DE_TOK, French for FR_TOK, English for
EN_TOK, a well-formed linearized tree for PARSE_TOK (the codes of
`t2t_multimodel.metrics.language`). `inputs_for(problem)` gives the
out-of-domain sentences in the problem's input language.
"""

from __future__ import annotations

from t2t_multimodel.data import features as features_lib
from t2t_multimodel.metrics import language

ENGLISH: tuple[str, ...] = (
    "The city council approved the new budget on Tuesday evening.",
    "Scientists found water ice near the south pole of the moon.",
    "Add the chopped onions and stir until they turn golden.",
    "The train to Berlin leaves from platform four at noon.",
    "Our team scored two goals in the last ten minutes.",
    "The museum will stay closed during the holidays.",
    "Heavy rain is expected across the north of the country tomorrow.",
    "She bought fresh bread and cheese at the market.",
    "The bridge was built more than a hundred years ago.",
    "Children learn languages faster than most adults.",
    "The company plans to open three new stores next year.",
    "Please keep your seat belt fastened during the flight.",
    "The old lighthouse stands on a rock above the harbour.",
    "Farmers expect a good harvest after the warm summer.",
    "The orchestra played a symphony by a young composer.",
    "He repaired the bicycle with a few simple tools.",
    "Most of the guests arrived after the speech had started.",
    "The doctor advised him to walk every morning.",
    "Prices for apartments in the capital rose again this year.",
    "The library lends books, films and music to its members.",
    "A strong wind blew the leaves across the garden.",
    "The new hospital will have two hundred beds.",
    "Tourists crowded the square to watch the parade.",
    "My grandmother grows tomatoes on her balcony.",
)

GERMAN: tuple[str, ...] = (
    "Der Stadtrat hat den neuen Haushalt am Dienstagabend beschlossen.",
    "Forscher haben Wassereis am Südpol des Mondes gefunden.",
    "Die Zwiebeln hinzufügen und rühren, bis sie goldbraun sind.",
    "Der Zug nach Berlin fährt um zwölf Uhr von Gleis vier ab.",
    "Unsere Mannschaft hat in den letzten zehn Minuten zwei Tore geschossen.",
    "Das Museum bleibt über die Feiertage geschlossen.",
    "Morgen wird im Norden des Landes starker Regen erwartet.",
    "Sie hat auf dem Markt frisches Brot und Käse gekauft.",
    "Die Brücke wurde vor mehr als hundert Jahren gebaut.",
    "Kinder lernen Sprachen schneller als die meisten Erwachsenen.",
    "Die Firma will im nächsten Jahr drei neue Geschäfte eröffnen.",
    "Bitte lassen Sie während des Fluges Ihren Gurt angelegt.",
    "Der alte Leuchtturm steht auf einem Felsen über dem Hafen.",
    "Die Bauern erwarten nach dem warmen Sommer eine gute Ernte.",
    "Das Orchester spielte eine Sinfonie eines jungen Komponisten.",
    "Er hat das Fahrrad mit ein paar einfachen Werkzeugen repariert.",
    "Die meisten Gäste kamen erst nach dem Beginn der Rede.",
    "Der Arzt riet ihm, jeden Morgen spazieren zu gehen.",
    "Die Wohnungspreise in der Hauptstadt sind dieses Jahr wieder gestiegen.",
    "Die Bibliothek verleiht Bücher, Filme und Musik an ihre Mitglieder.",
    "Ein starker Wind wehte die Blätter durch den Garten.",
    "Das neue Krankenhaus wird zweihundert Betten haben.",
    "Touristen drängten sich auf dem Platz, um den Umzug zu sehen.",
    "Meine Großmutter zieht Tomaten auf ihrem Balkon.",
)

_SENTENCES = {
    features_lib.SpaceID.EN_TOK: ENGLISH,
    features_lib.SpaceID.DE_TOK: GERMAN,
}
_EXPECTED = {
    features_lib.SpaceID.EN_TOK: "en",
    features_lib.SpaceID.DE_TOK: "de",
    features_lib.SpaceID.FR_TOK: "fr",
    features_lib.SpaceID.PARSE_TOK: language.TREE,
}


def expected_output(problem) -> str | None:
    """The language code (or `"tree"`) of the problem's outputs, or None."""
    return _EXPECTED.get(problem.target_space_id)


def inputs_for(problem) -> tuple[str, ...]:
    """Out-of-domain sentences in the problem's input language (or none)."""
    return _SENTENCES.get(problem.input_space_id, ())
