// The authenticated /v1 API. The key lives in sessionStorage (this tab only) and goes out as a
// Bearer header on every request; errors become ApiError with the server's own message.

const KEY = "cairn.key";

export const session = {
  get key() {
    return sessionStorage.getItem(KEY);
  },
  set key(value) {
    if (value) sessionStorage.setItem(KEY, value);
    else sessionStorage.removeItem(KEY);
  },
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Called with the error when the server rejects the key (401), wherever that happens. */
export const onUnauthenticated = { handler: null };

function headers(extra = {}) {
  const result = { ...extra };
  if (session.key) result.Authorization = `Bearer ${session.key}`;
  return result;
}

async function failure(response) {
  let code = "http_error";
  let message = `The server answered ${response.status} ${response.statusText}.`;
  try {
    const body = await response.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
    }
  } catch {
    // not JSON: keep the status line
  }
  const error = new ApiError(response.status, code, message);
  if (response.status === 401 && onUnauthenticated.handler) onUnauthenticated.handler(error);
  return error;
}

function networkError(error) {
  if (error.name === "AbortError") return error;
  return new ApiError(0, "network", "The server could not be reached. Check your connection and try again.");
}

/** A JSON request; resolves to the parsed body, rejects with ApiError. */
export async function api(path, { method = "GET", json, signal } = {}) {
  const init = { method, headers: headers(json === undefined ? {} : { "Content-Type": "application/json" }), signal };
  if (json !== undefined) init.body = JSON.stringify(json);
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw networkError(error);
  }
  if (!response.ok) throw await failure(response);
  return response.json();
}

/** Read a server-sent event stream from fetch; calls onEvent(name, data) per event. */
export async function streamEvents(path, { method = "GET", json, signal, onEvent }) {
  const init = { method, headers: headers({ Accept: "text/event-stream" }), signal };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw networkError(error);
  }
  if (!response.ok) throw await failure(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    }
  }
}

/** POST a multipart form with upload progress (XHR: fetch cannot report it); resolves to the JSON body. */
export function uploadForm(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    for (const [name, value] of Object.entries(headers())) xhr.setRequestHeader(name, value);
    xhr.responseType = "text";
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded, event.total);
    });
    xhr.addEventListener("load", async () => {
      const response = new Response(xhr.responseText, { status: xhr.status, statusText: xhr.statusText });
      if (xhr.status >= 200 && xhr.status < 300) resolve(JSON.parse(xhr.responseText));
      else reject(await failure(response));
    });
    xhr.addEventListener("error", () => reject(networkError(new Error("network"))));
    xhr.send(form);
  });
}

/** Fetch a document version's exact bytes and hand them to the browser as a download. */
export async function downloadVersion(collection, docId, version, fallbackName) {
  const path = `/v1/collections/${encodeURIComponent(collection)}/documents/${encodeURIComponent(docId)}/versions/${encodeURIComponent(version)}/content`;
  let response;
  try {
    response = await fetch(path, { headers: headers() });
  } catch (error) {
    throw networkError(error);
  }
  if (!response.ok) throw await failure(response);
  const disposition = response.headers.get("Content-Disposition") || "";
  const match = /filename="([^"]+)"/.exec(disposition);
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = match ? match[1] : fallbackName;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return blob.size;
}

export const collectionPath = (name) => `/v1/collections/${encodeURIComponent(name)}`;
