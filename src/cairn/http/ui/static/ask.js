// Ask: the answer streams in from POST /v1/ask (server-sent events over fetch), then its [n]
// markers become buttons that open the cited passage with its location and the exact version.

import { ApiError, downloadVersion, streamEvents } from "./api.js";
import { $, baseName, h, openDialog, setStatus, showError } from "./dom.js";

let controller = null;

export function setupAsk(state) {
  const form = $("#ask-form");
  const question = $("#question");
  question.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = question.value.trim();
    if (!text) {
      showError($("#ask-error"), "Type a question first.");
      question.focus();
      return;
    }
    ask(text, state.collection);
  });
}

async function ask(question, collection) {
  if (controller) controller.abort();
  controller = new AbortController();
  const mine = controller;
  const card = $("#answer-card");
  const answer = $("#answer");
  const list = $("#citations");
  const button = $("#ask-button");
  showError($("#ask-error"), "");
  $("#ask-empty").hidden = true;
  answer.replaceChildren();
  list.replaceChildren();
  renderWarnings([]);
  card.hidden = false;
  card.dataset.state = "streaming";
  answer.setAttribute("aria-busy", "true");
  button.disabled = true;
  setStatus($("#ask-status"), `Searching “${collection}”…`);
  let text = "";
  let citations = [];
  let result = null;
  let failure = null;
  try {
    await streamEvents("/v1/ask", {
      method: "POST",
      json: { question, collection, stream: true },
      signal: mine.signal,
      onEvent(name, data) {
        if (name === "answer") {
          text += data.text;
          answer.append(document.createTextNode(data.text));
          setStatus($("#ask-status"), "Answering…");
        } else if (name === "citations") {
          citations = data;
        } else if (name === "result") {
          result = data;
        } else if (name === "error") {
          failure = data;
        }
      },
    });
    if (failure) throw new ApiError(200, failure.code, failure.message);
    // The verified answer is the one to keep: verification may have dropped unsupported sentences.
    if (result) {
      text = result.answer;
      citations = result.citations;
    }
    renderAnswer(answer, text.trim(), citations, collection);
    renderCitations(list, citations, collection);
    renderWarnings(result ? result.warnings : []);
    card.dataset.state = "done";
    setStatus($("#ask-status"), summary(citations, result));
  } catch (error) {
    if (error.name === "AbortError") return;
    card.hidden = text.length === 0;
    card.dataset.state = "failed";
    setStatus($("#ask-status"), "");
    showError($("#ask-error"), error instanceof ApiError ? error.message : String(error));
  } finally {
    if (controller === mine) {
      answer.setAttribute("aria-busy", "false");
      button.disabled = false;
      controller = null;
    }
  }
}

function summary(citations, result) {
  if (!citations.length) return "No sources matched.";
  const by = result && result.generator && result.generator !== "extractive" ? ` by ${result.generator}` : "";
  return `Answered${by} from ${citations.length} source${citations.length === 1 ? "" : "s"}.`;
}

function renderWarnings(warnings) {
  const list = $("#answer-warnings");
  list.replaceChildren(...(warnings || []).map((warning) => h("li", {}, warning)));
  list.hidden = !list.childElementCount;
}

function citationLabel(citation) {
  const where = citation.location && citation.location.label;
  return where ? `${baseName(citation.source)} — ${where}` : baseName(citation.source);
}

/** The answer again, with each [n] turned into a button for citation n. */
function renderAnswer(node, text, citations, collection) {
  const parts = text.split(/(\[\d+\])/);
  node.replaceChildren(
    ...parts.map((part) => {
      const match = /^\[(\d+)\]$/.exec(part);
      const citation = match && citations[Number(match[1]) - 1];
      if (!citation) return document.createTextNode(part);
      return h(
        "button",
        {
          type: "button",
          class: "cite-ref",
          "aria-label": `Source ${match[1]}: ${citationLabel(citation)}`,
          onclick: () => showCitation(citation, Number(match[1]), collection),
        },
        match[1],
      );
    }),
  );
}

function renderCitations(list, citations, collection) {
  list.replaceChildren(
    ...citations.map((citation, i) =>
      h(
        "li",
        {},
        h(
          "button",
          { type: "button", class: "chip", onclick: () => showCitation(citation, i + 1, collection) },
          h("span", { class: "chip-number", "aria-hidden": "true" }, String(i + 1)),
          h("span", { class: "chip-name" }, baseName(citation.source)),
          citation.location && citation.location.label ? h("span", { class: "chip-where" }, citation.location.label) : null,
          citation.supported === false && citation.support !== undefined
            ? h("span", { class: "chip-weak" }, "weak support")
            : null,
        ),
      ),
    ),
  );
  if (!citations.length) list.append(h("li", { class: "empty" }, "No passages were cited."));
}

function clock(seconds) {
  const whole = Math.floor(seconds);
  const pad = (n) => String(n).padStart(2, "0");
  return `${pad(Math.floor(whole / 3600))}:${pad(Math.floor((whole % 3600) / 60))}:${pad(whole % 60)}`;
}

function span(start, end) {
  return end === null || end === undefined || end === start ? String(start) : `${start}–${end}`;
}

/** The location of a passage as labelled facts, in the terms of its document. */
function locationFacts(location) {
  const facts = [];
  if (!location) return facts;
  if (location.member) facts.push(["Member", location.member]);
  if (location.sheet) facts.push(["Sheet", location.sheet]);
  if (location.slide !== null && location.slide !== undefined) facts.push(["Slide", String(location.slide)]);
  if (location.page !== null && location.page !== undefined) {
    const many = location.page_end !== null && location.page_end !== undefined && location.page_end !== location.page;
    facts.push([many ? "Pages" : "Page", span(location.page, location.page_end)]);
  }
  if (location.heading_path && location.heading_path.length) facts.push(["Section", location.heading_path.join(" › ")]);
  if (location.row_start !== null && location.row_start !== undefined) facts.push(["Rows", span(location.row_start, location.row_end)]);
  if (location.line_start !== null && location.line_start !== undefined) facts.push(["Lines", span(location.line_start, location.line_end)]);
  if (location.time_start !== null && location.time_start !== undefined) {
    const end = location.time_end === null || location.time_end === undefined ? null : clock(location.time_end);
    facts.push(["Time", span(clock(location.time_start), end)]);
  }
  return facts;
}

function fillFacts(dl, facts) {
  dl.replaceChildren(...facts.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
  dl.hidden = facts.length === 0;
}

function showCitation(citation, number, collection) {
  const dialog = $("#citation-dialog");
  const name = baseName(citation.source);
  $("#citation-title").textContent = `[${number}] ${name}`;
  setStatus($("#citation-where"), citation.location && citation.location.label ? citation.location.label : "");
  fillFacts($("#citation-location"), [
    ...locationFacts(citation.location),
    ["Version", String(citation.version)],
    ...(citation.support !== undefined
      ? [["Support", `${Math.round(citation.support * 100)}%${citation.supported ? "" : " (does not fully support the answer)"}`]]
      : []),
    ["Collection", collection],
  ]);
  $("#citation-passage").textContent = citation.text;
  fillFacts($("#citation-metadata"), Object.entries(citation.metadata || {}));
  showError($("#citation-error"), "");
  setStatus($("#citation-status"), "");
  const download = $("#citation-download");
  download.textContent = `Download version ${citation.version}`;
  download.setAttribute("aria-label", `Download ${name}, version ${citation.version}, exactly as it was ingested`);
  download.onclick = async () => {
    download.disabled = true;
    setStatus($("#citation-status"), "Downloading…");
    try {
      const size = await downloadVersion(collection, citation.doc_id, citation.version, name);
      setStatus($("#citation-status"), `Downloaded ${name}, version ${citation.version} (${size.toLocaleString()} bytes).`);
    } catch (error) {
      setStatus($("#citation-status"), "");
      showError($("#citation-error"), error.message);
    } finally {
      download.disabled = false;
    }
  };
  openDialog(dialog, $("#citation-title"));
}

export function resetAsk() {
  if (controller) controller.abort();
  $("#answer-card").hidden = true;
  $("#ask-empty").hidden = false;
  $("#answer").replaceChildren();
  $("#citations").replaceChildren();
  renderWarnings([]);
  setStatus($("#ask-status"), "");
  showError($("#ask-error"), "");
}
