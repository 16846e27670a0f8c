// cairn's web UI: sign in with an API key, pick a collection, and move between the views.
// Every piece of server data is rendered as text (see dom.js); the page has no inline script.

import { setupAdmin, loadCollections, loadKeys } from "./admin.js";
import { ApiError, api, onUnauthenticated, session } from "./api.js";
import { resetAsk, setupAsk } from "./ask.js";
import { $, h, showError } from "./dom.js";
import { loadJobs, setupJobs } from "./jobs.js";
import { loadDocuments, setupLibrary } from "./library.js";

const VIEWS = ["ask", "library", "jobs", "keys", "collections"];
const ADMIN_VIEWS = new Set(["keys", "collections"]);
const COLLECTION = "cairn.collection";

const state = { keyId: null, admin: false, tenant: null, role: null, collection: null, collections: [] };

function keyIdOf(token) {
  const parts = token.split("_");
  return parts.length >= 3 ? parts[1] : null;
}

async function signIn(token, { quiet = false } = {}) {
  const error = $("#signin-error");
  showError(error, "");
  session.key = token;
  try {
    const { collections } = await api("/v1/collections");
    state.keyId = keyIdOf(token);
    state.collections = collections.map((c) => c.name);
    await learnRole();
  } catch (failure) {
    session.key = null;
    if (!quiet) showError(error, failure instanceof ApiError ? failure.message : String(failure));
    showSignIn();
    return false;
  }
  $("#api-key").value = "";
  enterApp();
  return true;
}

/** Only admins may list keys: the answer tells the UI whether to show the admin views. */
async function learnRole() {
  try {
    const { keys } = await api("/v1/keys");
    const mine = keys.find((key) => key.key_id === state.keyId);
    state.admin = true;
    state.role = mine ? mine.role : "admin";
    state.tenant = mine ? mine.tenant : null;
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 403) throw error;
    state.admin = false;
    state.role = null;
    state.tenant = null;
  }
}

function signOut(message) {
  session.key = null;
  Object.assign(state, { keyId: null, admin: false, tenant: null, role: null, collections: [] });
  resetAsk();
  showSignIn();
  if (message) showError($("#signin-error"), message);
  history.replaceState(null, "", "#/");
  $("#api-key").focus();
}

function showSignIn() {
  for (const name of VIEWS) $(`#view-${name}`).hidden = true;
  $("#view-signin").hidden = false;
  $("#nav").hidden = true;
  $("#session").hidden = true;
}

function fillCollections() {
  const select = $("#collection");
  const saved = sessionStorage.getItem(COLLECTION);
  const names = state.collections.length ? state.collections : ["default"];
  select.replaceChildren(
    ...names.map((name) => h("option", { value: name }, state.collections.length ? name : `${name} (empty)`)),
  );
  state.collection = names.includes(saved) ? saved : names[0];
  select.value = state.collection;
  $("#upload-collection").value = state.collection;
}

async function refreshCollections(preferred) {
  try {
    const { collections } = await api("/v1/collections");
    state.collections = collections.map((c) => c.name);
  } catch {
    return; // the views show their own errors
  }
  if (preferred && state.collections.includes(preferred)) sessionStorage.setItem(COLLECTION, preferred);
  fillCollections();
}

function enterApp() {
  $("#view-signin").hidden = true;
  $("#nav").hidden = false;
  $("#session").hidden = false;
  for (const item of document.querySelectorAll("[data-admin]")) item.hidden = !state.admin;
  const who = state.admin ? `${state.tenant ?? "?"} · ${state.role}` : "signed in";
  $("#identity").replaceChildren(who, state.keyId ? h("code", {}, ` ${state.keyId}`) : "");
  $("#upload-tenant").placeholder = state.tenant ?? "your key's tenant";
  $("#key-tenant").value = state.tenant ?? "";
  fillCollections();
  const wanted = location.hash.replace(/^#\//, "");
  route(VIEWS.includes(wanted) ? wanted : "ask", { focus: "start" });
}

function route(name, { focus = "heading" } = {}) {
  if (!session.key) return;
  if (location.hash !== `#/${name}`) history.replaceState(null, "", `#/${name}`);
  for (const view of VIEWS) $(`#view-${view}`).hidden = view !== name;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const denied = ADMIN_VIEWS.has(name) && !state.admin;
  if (name === "keys") {
    $("#keys-denied").hidden = !denied;
    $("#keys-admin").hidden = denied;
    if (!denied) loadKeys(state);
  } else if (name === "collections") {
    $("#collections-denied").hidden = !denied;
    $("#collections-refresh").hidden = denied;
    if (!denied) loadCollections(state, () => refreshCollections());
  } else if (name === "library") {
    loadDocuments(state);
  } else if (name === "jobs") {
    loadJobs();
  }
  if (focus === "start" && name === "ask") $("#question").focus();
  else if (focus) $(`#${name}-title`).focus();
}

function setup() {
  onUnauthenticated.handler = (error) => signOut(`Signed out: ${error.message}`);
  $("#signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("#api-key").value.trim();
    if (!token) {
      showError($("#signin-error"), "Enter your API key.");
      $("#api-key").focus();
      return;
    }
    signIn(token);
  });
  $("#sign-out").addEventListener("click", () => signOut());
  $("#collection").addEventListener("change", (event) => {
    state.collection = event.target.value;
    sessionStorage.setItem(COLLECTION, state.collection);
    $("#upload-collection").value = state.collection;
    resetAsk();
    if (!$("#view-library").hidden) loadDocuments(state);
  });
  window.addEventListener("hashchange", () => {
    const name = location.hash.replace(/^#\//, "");
    if (VIEWS.includes(name)) route(name);
  });
  setupAsk(state);
  setupLibrary(state, {
    onUploaded: async (collection) => {
      await refreshCollections(collection);
      state.collection = $("#collection").value;
      await loadDocuments(state);
    },
  });
  setupJobs();
  setupAdmin(state, { onCollectionsChanged: () => refreshCollections() });
  if (session.key) signIn(session.key, { quiet: true });
  else {
    showSignIn();
    $("#api-key").focus();
  }
}

setup();
