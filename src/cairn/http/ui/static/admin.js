// Administration: API keys (a new key is shown once) and collections. The views are hidden from
// keys that are not admins; the server refuses their requests anyway.

import { api, collectionPath } from "./api.js";
import { $, confirmAction, fillTable, h, setStatus, showError, splitList, when } from "./dom.js";

const KEY_LABELS = ["Key id", "Role", "User", "Groups", "Collections", "Created", "Status", ""];
const COLLECTION_LABELS = ["Name", "Documents you may see", ""];

export function setupAdmin(state, { onCollectionsChanged }) {
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    createKey(state);
  });
  $("#keys-refresh").addEventListener("click", () => loadKeys(state));
  $("#collections-refresh").addEventListener("click", () => loadCollections(state, onCollectionsChanged));
  $("#key-copy").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText($("#key-created-value").textContent);
      setStatus($("#key-copy-status"), "Copied to the clipboard.");
    } catch {
      setStatus($("#key-copy-status"), "Copying is not allowed here: select the key and copy it by hand.");
    }
  });
  $("#key-created-done").addEventListener("click", () => {
    $("#key-created-value").textContent = "";
    $("#key-created").hidden = true;
    $("#key-role").focus();
  });
}

async function createKey(state) {
  const error = $("#key-error");
  showError(error, "");
  const tenant = $("#key-tenant").value.trim();
  if (!tenant) {
    showError(error, "A key needs a tenant.");
    $("#key-tenant").focus();
    return;
  }
  const body = { role: $("#key-role").value, tenant, groups: splitList($("#key-groups").value) };
  const user = $("#key-user").value.trim();
  const collections = splitList($("#key-collections").value);
  const expires = $("#key-expires").value.trim();
  if (user) body.user = user;
  if (collections.length) body.collections = collections;
  if (expires) body.expires = expires;
  try {
    const created = await api("/v1/keys", { method: "POST", json: body });
    $("#key-created-value").textContent = created.key;
    setStatus($("#key-copy-status"), "");
    $("#key-created").hidden = false;
    $("#key-created-title").focus();
    for (const id of ["#key-user", "#key-groups", "#key-collections", "#key-expires"]) $(id).value = "";
    await loadKeys(state);
  } catch (failure) {
    showError(error, failure.message);
  }
}

function keyStatus(key) {
  if (key.revoked_at) return ["revoked", `revoked ${when(key.revoked_at)}`];
  if (key.expires_at && key.expires_at * 1000 < Date.now()) return ["expired", `expired ${when(key.expires_at)}`];
  return ["active", key.expires_at ? `active, expires ${when(key.expires_at)}` : "active"];
}

export async function loadKeys(state) {
  const table = $("#keys");
  const status = $("#keys-status");
  showError($("#keys-error"), "");
  setStatus(status, "Loading keys…");
  try {
    const { keys } = await api("/v1/keys");
    keys.sort((a, b) => b.created_at - a.created_at);
    fillTable(
      table,
      KEY_LABELS,
      keys.map((key) => {
        const [kind, text] = keyStatus(key);
        const mine = key.key_id === state.keyId;
        return [
          h("code", {}, key.key_id, mine ? h("span", { class: "you" }, " (this key)") : null),
          key.role,
          key.user || "—",
          key.groups.length ? key.groups.join(", ") : "—",
          key.collections ? key.collections.join(", ") : "all",
          when(key.created_at),
          h("span", { class: `badge badge-${kind}` }, text),
          kind === "revoked"
            ? ""
            : h(
                "button",
                {
                  type: "button",
                  class: "danger quiet",
                  "aria-label": `Revoke key ${key.key_id}`,
                  onclick: () => revokeKey(state, key, mine),
                },
                "Revoke",
              ),
        ];
      }),
    );
    setStatus(status, keys.length ? "" : "No keys yet.");
  } catch (error) {
    table.hidden = true;
    setStatus(status, "");
    showError($("#keys-error"), error.message);
  }
}

async function revokeKey(state, key, mine) {
  const warning = mine ? " This is the key you are signed in with: you will be signed out." : "";
  const ok = await confirmAction(
    `Revoke key ${key.key_id}?`,
    `Requests with this key fail from the next one on. This cannot be undone.${warning}`,
    "Revoke key",
  );
  if (!ok) return;
  try {
    await api(`/v1/keys/${encodeURIComponent(key.key_id)}`, { method: "DELETE" });
    await loadKeys(state);
    setStatus($("#keys-status"), `Key ${key.key_id} revoked.`);
  } catch (error) {
    showError($("#keys-error"), error.message);
  }
}

export async function loadCollections(state, onCollectionsChanged) {
  const table = $("#collections-table");
  const status = $("#collections-status");
  showError($("#collections-error"), "");
  setStatus(status, "Loading collections…");
  try {
    const { collections } = await api("/v1/collections");
    fillTable(
      table,
      COLLECTION_LABELS,
      collections.map((c) => [
        c.name,
        String(c.documents),
        h(
          "button",
          {
            type: "button",
            class: "danger quiet",
            "aria-label": `Drop collection ${c.name}`,
            onclick: () => dropCollection(state, c.name, onCollectionsChanged),
          },
          "Drop",
        ),
      ]),
    );
    setStatus(status, collections.length ? "" : "No collections yet. Uploading documents creates one.");
  } catch (error) {
    table.hidden = true;
    setStatus(status, "");
    showError($("#collections-error"), error.message);
  }
}

async function dropCollection(state, name, onCollectionsChanged) {
  const ok = await confirmAction(
    `Drop collection ${name}?`,
    "Its index and manifest are deleted, so nobody can search it. The original bytes stay in the vault.",
    "Drop collection",
  );
  if (!ok) return;
  try {
    await api(collectionPath(name), { method: "DELETE" });
    await onCollectionsChanged();
    await loadCollections(state, onCollectionsChanged);
    setStatus($("#collections-status"), `Collection ${name} dropped.`);
  } catch (error) {
    showError($("#collections-error"), error.message);
  }
}
