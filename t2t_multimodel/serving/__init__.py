"""Serving an exported MultiModel: TF Serving's REST API and a web page.

`app.create_app` builds the web application over a `served_model.ServedModel`;
`app.serve` runs it under uvicorn (what `bin/t2t-mm-serve` calls).
"""
