// The page: lists the model's signatures from the metadata endpoint, builds
// a TF Serving predict request from text, an image or a WAV file (uploaded,
// dropped or recorded), and shows the answer, scores and latency.
"use strict";

const MODEL = document.querySelector('meta[name="model-name"]').content;
const API = "/v1/models/" + encodeURIComponent(MODEL);
const $ = (id) => document.getElementById(id);
const SVG_NS = "http://www.w3.org/2000/svg";
const KINDS = {
  inputs: { kind: "text", help: "Text in, text out." },
  image_bytes: { kind: "image", accept: "image/*", help: "An image (JPEG, PNG, BMP, GIF)." },
  audio_bytes: { kind: "audio", accept: ".wav,audio/wav", help: "Speech as a WAV file (16-bit PCM), or record it." },
};

let signatures = {};
let fileBytes = null; // Uint8Array of the chosen image or WAV
let recorder = null;

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function inputName(signature) {
  return Object.keys(signatures[signature].inputs)[0];
}

function kindOf(signature) {
  const names = Object.keys(signatures[signature].inputs);
  return names.length === 1 && KINDS[names[0]] ? KINDS[names[0]] : null;
}

async function loadSignatures() {
  const response = await fetch(API + "/metadata");
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  signatures = body.metadata.signature_def.signature_def;
  const select = $("signature");
  for (const name of Object.keys(signatures).sort()) {
    const option = document.createElement("option");
    option.value = name;
    const kind = kindOf(name);
    option.textContent = name + (kind ? "  (" + kind.kind + ")" : "");
    select.appendChild(option);
  }
  select.disabled = false;
  $("run").disabled = false;
  $("status").textContent = "Model \u201c" + MODEL + "\u201d version " +
    body.model_spec.version + ": " + Object.keys(signatures).length + " tasks.";
  onSignatureChange();
}

function onSignatureChange() {
  const kind = kindOf($("signature").value);
  $("text-input").hidden = !kind || kind.kind !== "text";
  $("file-input").hidden = !kind || kind.kind === "text";
  $("record-controls").hidden = !kind || kind.kind !== "audio";
  $("signature-help").textContent = kind ? kind.help :
    "This signature's inputs are not text, image or audio; use the REST API.";
  if (kind && kind.accept) {
    $("file").accept = kind.accept;
    $("file-label").textContent = kind.kind === "image" ? "Image" : "WAV file";
  }
  setFile(null, null);
  showError("");
}

function setFile(bytes, blob) {
  fileBytes = bytes;
  const preview = $("preview");
  preview.replaceChildren();
  if (!blob) return;
  const kind = kindOf($("signature").value);
  const element = document.createElement(kind && kind.kind === "image" ? "img" : "audio");
  element.src = URL.createObjectURL(blob);
  if (element.tagName === "AUDIO") element.controls = true;
  preview.appendChild(element);
}

async function readFile(file) {
  setFile(new Uint8Array(await file.arrayBuffer()), file);
}

function base64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function buildInstance(signature) {
  const kind = kindOf(signature);
  if (!kind) throw new Error("No form for this signature's inputs.");
  if (kind.kind === "text") {
    const text = $("text").value.trim();
    if (!text) throw new Error("Type some text first.");
    return text;
  }
  if (!fileBytes) throw new Error("Choose a file first.");
  return { b64: base64(fileBytes) };
}

async function run() {
  showError("");
  const signature = $("signature").value;
  let request;
  try {
    request = { signature_name: signature, instances: [buildInstance(signature)] };
  } catch (e) {
    showError(e.message);
    return;
  }
  $("run").disabled = true;
  const start = performance.now();
  try {
    const response = await fetch(API + ":predict", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(request),
    });
    const roundTrip = performance.now() - start;
    const body = await response.json();
    if (!response.ok) throw new Error(response.status + ": " + (body.error || ""));
    const timing = /dur=([\d.]+)/.exec(response.headers.get("Server-Timing") || "");
    showResult(body.predictions[0], body, roundTrip, timing ? Number(timing[1]) : null);
  } catch (e) {
    $("result").hidden = true;
    showError(e.message);
  } finally {
    $("run").disabled = false;
  }
}

function asText(value) {
  if (value && typeof value === "object" && "b64" in value) return "(bytes) " + value.b64;
  return typeof value === "string" ? value : JSON.stringify(value);
}

function showResult(prediction, body, roundTrip, serverMs) {
  const answer = $("answer");
  const chart = $("chart");
  chart.style.display = "none"; // SVG elements ignore .hidden
  if (prediction === null || typeof prediction !== "object" || "b64" in prediction) {
    answer.textContent = asText(prediction);
  } else if ("classes" in prediction) {
    const id = "class_ids" in prediction ? " (class " + prediction.class_ids + ")" : "";
    answer.textContent = asText(prediction.classes) + id;
  } else if ("outputs" in prediction) {
    answer.textContent = asText(prediction.outputs);
  } else {
    answer.textContent = Object.entries(prediction)
      .map(([k, v]) => k + ": " + asText(v)).join("\n");
  }
  // Scalar numbers beside the answer (a text answer's log-probability).
  const numbers = prediction && typeof prediction === "object" && !("b64" in prediction)
    ? Object.entries(prediction).filter(([k, v]) => typeof v === "number" && k !== "class_ids")
    : [];
  $("detail").textContent = numbers.map(([k, v]) => k + ": " + v.toFixed(3)).join(", ");
  if (prediction && Array.isArray(prediction.scores)) {
    drawChart(prediction.scores.flat(), labelsFor(prediction));
  }
  $("latency").textContent = "Latency: " + roundTrip.toFixed(1) + " ms round trip" +
    (serverMs === null ? "" : ", " + serverMs.toFixed(1) + " ms in the server");
  $("raw").textContent = JSON.stringify(body, null, 2);
  $("result").hidden = false;
}

function labelsFor(prediction) {
  // One label per score when the signature returns them; else the index,
  // with the predicted class named.
  for (const value of Object.values(prediction)) {
    if (Array.isArray(value) && value.length === prediction.scores.length &&
        value.every((v) => typeof v === "string")) return value;
  }
  return prediction.scores.map((_, i) =>
    i === prediction.class_ids && typeof prediction.classes === "string"
      ? prediction.classes : "class " + i);
}

function drawChart(scores, labels, maxBars = 10) {
  const chart = $("chart");
  chart.replaceChildren();
  const order = scores.map((s, i) => i).sort((a, b) => scores[b] - scores[a]).slice(0, maxBars);
  const rowHeight = 24, labelWidth = 160, width = 640, barSpace = width - labelWidth - 70;
  const top = Math.max(...scores.map(Math.abs), 1e-9);
  chart.setAttribute("viewBox", "0 0 " + width + " " + order.length * rowHeight);
  chart.setAttribute("height", order.length * rowHeight);
  const add = (tag, attributes, text) => {
    const element = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attributes)) element.setAttribute(k, v);
    if (text !== undefined) element.textContent = text;
    chart.appendChild(element);
  };
  order.forEach((index, row) => {
    const y = row * rowHeight;
    add("text", { x: labelWidth - 8, y: y + 16, "text-anchor": "end" }, labels[index]);
    add("rect", { class: "bar" + (row === 0 ? " top" : ""), x: labelWidth, y: y + 3,
      width: Math.max(1, barSpace * Math.abs(scores[index]) / top), height: rowHeight - 6 });
    add("text", { x: labelWidth + barSpace * Math.abs(scores[index]) / top + 6, y: y + 16 },
      scores[index].toFixed(3));
  });
  chart.style.display = "";
}

async function toggleRecording() {
  const button = $("record");
  if (recorder) {
    recorder.stop();
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (e) {
    showError("No microphone: " + e.message);
    return;
  }
  const chunks = [];
  recorder = new MediaRecorder(stream);
  recorder.ondataavailable = (event) => chunks.push(event.data);
  recorder.onstop = async () => {
    stream.getTracks().forEach((track) => track.stop());
    recorder = null;
    button.textContent = "Record";
    button.classList.remove("recording");
    try {
      const wav = await blobToWav(new Blob(chunks, { type: chunks[0] && chunks[0].type }));
      setFile(wav, new Blob([wav], { type: "audio/wav" }));
      $("record-status").textContent = "Recorded " + wav.length + " bytes of WAV.";
    } catch (e) {
      showError("Could not decode the recording: " + e.message);
    }
  };
  recorder.start();
  button.textContent = "Stop";
  button.classList.add("recording");
  $("record-status").textContent = "Recording\u2026";
}

function setUp() {
  document.querySelectorAll(".model").forEach((e) => { e.textContent = MODEL; });
  $("signature").addEventListener("change", onSignatureChange);
  $("run").addEventListener("click", run);
  $("record").addEventListener("click", toggleRecording);
  $("file").addEventListener("change", (event) => {
    if (event.target.files[0]) readFile(event.target.files[0]);
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files[0]) readFile(event.dataTransfer.files[0]);
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) run();
  });
  loadSignatures().catch((e) => {
    $("status").textContent = "";
    showError("Could not load the model's signatures: " + e.message);
  });
}

setUp();
