// DOM helpers. Server text only ever enters the page as text nodes or textContent: nothing here
// parses markup, so a document that contains "<img src=...>" shows those characters, never an image.

export const $ = (selector, root = document) => root.querySelector(selector);

/** An element with attributes and children; strings become text nodes. */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Show *message* in an error element, or hide it when message is empty. */
export function showError(node, message) {
  node.textContent = message || "";
  node.hidden = !message;
}

export function setStatus(node, message) {
  node.textContent = message || "";
}

/** The last part of a path: documents are named by their file name in the UI. */
export function baseName(path) {
  // An uploaded document's source is "upload:NAME"; other sources are paths or URIs.
  const text = String(path || "").replace(/^upload:/, "");
  const parts = text.split(/[\\/]/);
  return parts[parts.length - 1] || text;
}

export function when(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  return new Date(seconds * 1000).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function splitList(text) {
  return String(text || "")
    .split(",")
    .map((part) => part.trim())
    .filter(Boolean);
}

/** Replace a table's body with *rows* (each a list of cells) and show or hide the table. */
export function fillTable(table, labels, rows) {
  const body = table.tBodies[0];
  body.replaceChildren(
    ...rows.map((cells) =>
      h("tr", {}, ...cells.map((cell, i) => h(i === 0 ? "th" : "td", i === 0 ? { scope: "row" } : { "data-label": labels[i] }, cell))),
    ),
  );
  table.hidden = rows.length === 0;
}

/** A modal dialog that returns focus to the element that opened it. */
export function openDialog(dialog, focusTarget) {
  const opener = document.activeElement;
  // The "close" event comes a task after the dialog closed, and the browser may already have put focus
  // back on the opener: only restore it if focus is lost (on the body or still in the dialog), or a key
  // pressed in between (Shift+Tab away from the opener) would be undone.
  const restore = () => {
    dialog.removeEventListener("close", restore);
    const current = document.activeElement;
    const lost = !current || current === document.body || dialog.contains(current);
    if (lost && opener instanceof HTMLElement && opener.isConnected) opener.focus();
  };
  dialog.addEventListener("close", restore);
  for (const closer of dialog.querySelectorAll("[data-close]")) closer.onclick = () => dialog.close();
  dialog.showModal();
  (focusTarget || dialog.querySelector("[data-close]")).focus();
}

/** Ask before a destructive action; resolves true when confirmed. */
export function confirmAction(title, text, action) {
  const dialog = $("#confirm-dialog");
  $("#confirm-title").textContent = title;
  $("#confirm-text").textContent = text;
  const yes = $("#confirm-yes");
  yes.textContent = action;
  return new Promise((resolve) => {
    let confirmed = false;
    yes.onclick = () => {
      confirmed = true;
      dialog.close();
    };
    dialog.addEventListener("close", () => resolve(confirmed), { once: true });
    openDialog(dialog, $("#confirm-no"));
  });
}
