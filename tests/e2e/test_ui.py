"""The web UI in headless Chromium against a real cairn service: sign in, upload, ask, cite, administer."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, Request, expect
from ui_service import Service, artifact, sign_in

from cairn.http.ui import CONTENT_SECURITY_POLICY

pytestmark = pytest.mark.e2e

STATIC = Path(__file__).parents[2] / "src" / "cairn" / "http" / "ui" / "static"
PARENTAL = "How many days of paid parental leave do employees get?"


def ask(page: Page, question: str) -> Locator:
    """Ask *question* in the Ask view and wait until the answer has finished; returns the answer card."""
    page.get_by_label("Question").fill(question)
    page.get_by_role("button", name="Ask", exact=True).click()
    card = page.locator("#answer-card")
    expect(card).to_have_attribute("data-state", "done")
    return card


def test_the_page_and_assets_are_public_with_a_strict_csp_but_data_needs_a_key(service: Service) -> None:
    """/ and /ui/* answer without a key and carry the CSP (self only, nothing inline); the API still needs a key."""
    page = httpx.get(service.url + "/")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert policy == CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "unsafe" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    scripts = re.findall(r"<script\b[^>]*>", page.text)
    assert scripts
    assert all("src=" in tag for tag in scripts), "no inline scripts"
    assert " style=" not in page.text, "no inline styles"
    assert "<style" not in page.text, "no inline styles"
    asset = httpx.get(service.url + "/ui/app.js")
    assert asset.status_code == 200
    assert asset.headers["content-type"].startswith("text/javascript")
    assert asset.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    missing = httpx.get(service.url + "/ui/secrets.json")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert httpx.get(service.url + "/v1/collections").status_code == 401


def test_the_browser_enforces_the_policy_on_injected_script_and_remote_images(
    browser: Browser, service: Service
) -> None:
    """Were markup ever injected, the CSP stops it: an inline script does not run and a remote image is not
    fetched; the browser reports both as violations of script-src and img-src."""
    context = browser.new_context()
    tab = context.new_page()
    remote: list[str] = []
    tab.on("requestfinished", lambda r: remote.append(r.url) if not r.url.startswith(service.url) else None)
    try:
        tab.goto(service.url + "/")
        # Chromium reports a request it blocks by policy as one that failed with the reason "csp".
        with tab.expect_event("requestfailed") as failed:
            tab.evaluate(
                """() => {
                    window.violations = [];
                    const record = (e) => window.violations.push(e.effectiveDirective);
                    document.addEventListener('securitypolicyviolation', record);
                    const script = document.createElement('script');
                    script.textContent = 'window.injected = true';
                    document.body.append(script);
                    const image = document.createElement('img');
                    image.src = 'http://127.0.0.1:9/beacon.png';
                    document.body.append(image);
                }"""
            )
        assert failed.value.url == "http://127.0.0.1:9/beacon.png"
        assert failed.value.failure == "csp"
        tab.wait_for_function("() => window.violations.length >= 2")
        assert sorted(tab.evaluate("window.violations")) == ["img-src", "script-src-elem"]
        assert tab.evaluate("window.injected") is None
        assert remote == []
    finally:
        context.close()


def test_no_script_puts_markup_into_the_page() -> None:
    """Server data is rendered as text: no script of the UI uses innerHTML, outerHTML, insertAdjacentHTML or
    document.write, which could turn document text into markup."""
    sinks = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|DOMParser|createContextualFragment")
    scripts = sorted(STATIC.glob("*.js"))
    assert len(scripts) >= 5
    for script in scripts:
        assert not sinks.search(script.read_text()), script.name


def test_a_bad_key_shows_the_servers_error_and_a_good_one_signs_in(page: Page, service: Service) -> None:
    """An unknown key gets the server's JSON error message on the sign-in form; a real key opens the app, and
    signing out forgets the key."""
    page.goto(service.url + "/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("API key", exact=True).fill("cairn_" + "ab" * 8 + "_" + "A" * 43)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown API key")
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()

    page.get_by_label("API key", exact=True).fill(service.tokens["editor"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Ask", exact=True)).to_be_visible()
    expect(page.locator("#collection")).to_have_value("default")
    assert page.evaluate("sessionStorage.getItem('cairn.key')") == service.tokens["editor"]

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('cairn.key')") is None


def test_upload_shows_progress_until_the_job_is_done(page: Page, service: Service, tmp_path: Path) -> None:
    """An editor uploads a file with an ACL into a new collection: the progress bar fills, the job ends 'done',
    the document is listed with its ACL and the jobs view shows the finished job."""
    note = tmp_path / "rota.md"
    note.write_text("# Holiday rota\n\nThe winter holiday rota is published on the first Monday of November.\n")
    sign_in(page, service, "editor")
    page.get_by_role("link", name="Library").click()
    expect(page.get_by_role("heading", name="Library")).to_be_focused()
    page.get_by_label("Files").set_input_files(str(note))
    page.locator("#upload-collection").fill("uploads")
    page.get_by_label("Who may see them").fill("hr, user:erin")
    with page.expect_response(lambda r: r.url.endswith("/v1/collections/uploads/documents")) as posted:
        page.get_by_role("button", name="Upload", exact=True).click()
    assert posted.value.status == 202

    progress = page.locator("#upload-progress-box")
    expect(progress).to_have_attribute("data-state", "done", timeout=120_000)
    expect(page.locator("#upload-progress-text")).to_contain_text("Done: 1 ingested")
    bar = page.get_by_role("progressbar")
    assert bar.evaluate("b => b.value === b.max")
    expect(page.locator("#collection")).to_have_value("uploads")
    row = page.locator("#documents tbody tr", has_text="rota.md")
    expect(row).to_contain_text("group:hr")
    expect(row).to_contain_text("user:erin")

    page.get_by_role("link", name="Jobs").click()
    job = page.locator("#jobs tbody tr", has_text="uploads")
    expect(job.locator(".badge")).to_have_text("done")
    expect(job).to_contain_text("1 of 1")


def test_a_refused_upload_shows_the_servers_message(page: Page, service: Service, tmp_path: Path) -> None:
    """A reader may not upload: the form shows the server's own JSON error message and the bar marks failure."""
    note = tmp_path / "note.txt"
    note.write_text("A note the reader may not add.\n")
    sign_in(page, service, "reader")
    page.get_by_role("link", name="Library").click()
    page.get_by_label("Files").set_input_files(str(note))
    page.get_by_label("Who may see them").fill("*")
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#upload-error")).to_have_text(
        "this key's role (reader) may not ingest; it needs editor or above"
    )
    expect(page.locator("#upload-progress-box")).to_have_attribute("data-state", "failed")


def test_ask_streams_a_cited_answer(page: Page, service: Service) -> None:
    """The question goes to the streaming ask route; the answer appears in a live region with numbered citation
    chips naming the source and its location."""
    sign_in(page, service, "editor")
    answer = page.locator("#answer")
    expect(answer).to_have_attribute("aria-live", "polite")
    with page.expect_response(lambda r: r.url.endswith("/v1/ask")) as asked:
        card = ask(page, PARENTAL)
    assert asked.value.request.post_data_json == {"question": PARENTAL, "collection": "default", "stream": True}
    assert asked.value.headers["content-type"].startswith("text/event-stream")
    expect(answer).to_contain_text("120 days of paid parental leave")
    expect(answer).to_have_attribute("aria-busy", "false")
    chip = card.locator(".chip").first
    expect(chip).to_contain_text("employee-handbook.md")
    expect(chip).to_contain_text("Parental leave")
    expect(answer.locator(".cite-ref").first).to_have_accessible_name(re.compile(r"^Source 1: employee-handbook\.md"))
    expect(page.get_by_role("status").first).to_contain_text("Answered from")


def test_faq_answers_show_whole_answering_sentences(page: Page, service: Service) -> None:
    """Asked about the FAQ's sick-on-holiday rule, the UI shows the FAQ's answer as one whole sentence (its
    wrapped lines joined), not the FAQ's question line and not a fragment of a wrapped line."""
    sign_in(page, service, "editor")
    ask(page, "What happens to my annual leave if I am sick on holiday?")
    answer = page.locator("#answer")
    expect(answer).to_contain_text(
        "If you are ill for two or more days of a holiday and can provide a doctor's note, those days are "
        "recorded as sick leave and your annual leave is credited back."
    )
    expect(answer).not_to_contain_text("Q:")
    expect(answer).not_to_contain_text("?")


def test_a_citation_opens_its_passage_and_location_and_downloads_the_exact_version(
    page: Page, service: Service
) -> None:
    """Choosing a citation opens a dialog with the passage, its heading path and line range and version; its
    download button saves the exact bytes of that version."""
    sign_in(page, service, "editor")
    ask(page, PARENTAL)
    page.locator("#citations .chip", has_text="employee-handbook.md").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading", level=2)).to_have_text(re.compile(r"^\[\d+\] employee-handbook\.md$"))
    expect(dialog.locator("blockquote")).to_contain_text("120 days of paid parental leave")
    facts = dialog.locator("#citation-location")
    expect(facts.locator("dt", has_text="Section")).to_be_visible()
    expect(facts).to_contain_text("Leave › Parental leave")
    expect(facts.locator("dt", has_text="Lines")).to_be_visible()
    expect(facts.locator("dd").filter(has_text=re.compile(r"^\d+–\d+$")).first).to_be_visible()
    expect(facts).to_contain_text("Version")
    page.screenshot(path=str(artifact("citation-dialog.png")))

    with page.expect_download() as download_info:
        dialog.get_by_role("button", name=re.compile(r"^Download employee-handbook\.md, version 1")).click()
    download = download_info.value
    assert download.suggested_filename == "employee-handbook.md"
    assert Path(download.path()).read_bytes() == service.files["employee-handbook.md"].read_bytes()
    expect(dialog.get_by_role("status")).to_contain_text("Downloaded employee-handbook.md, version 1")

    dialog.get_by_role("button", name="Close", exact=True).last.click()
    expect(dialog).to_be_hidden()


def test_an_admin_manages_keys_and_collections(page: Page, service: Service, tmp_path: Path) -> None:
    """The admin sees the Keys and Collections views: a created key is shown once and works, the list shows it,
    revoking marks it revoked; a collection is dropped after confirmation."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "notes.txt").write_text("Scratch notes about the spring offsite.\n")
    service.cairn.ingest([scratch], collection="scratch", tenant="acme", allow=["*"])

    sign_in(page, service, "admin")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Keys")).to_be_visible()
    expect(nav.get_by_role("link", name="Collections")).to_be_visible()
    expect(page.locator("#identity")).to_contain_text("acme · admin")

    nav.get_by_role("link", name="Keys").click()
    expect(page.locator("#keys tbody tr", has_text=service.key_ids["admin"])).to_contain_text("(this key)")
    page.get_by_label("Role").select_option("reader")
    page.get_by_label("Groups").fill("support, field")
    page.get_by_label("Expires after").fill("30d")
    page.get_by_role("button", name="Create key").click()
    shown = page.locator("#key-created-value")
    expect(shown).to_have_text(re.compile(r"^cairn_[0-9a-f]+_\S+$"))
    token = shown.inner_text()
    key_id = token.split("_")[1]
    assert httpx.get(service.url + "/v1/models", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    row = page.locator("#keys tbody tr", has_text=key_id)
    expect(row).to_contain_text("field, support")
    expect(row.locator(".badge")).to_contain_text("active, expires")
    page.get_by_role("button", name="Done").click()
    expect(shown).to_be_hidden()
    expect(page.get_by_text(token)).to_have_count(0)

    row.get_by_role("button", name=f"Revoke key {key_id}").click()
    confirm = page.get_by_role("dialog", name=f"Revoke key {key_id}?")
    expect(confirm).to_be_visible()
    confirm.get_by_role("button", name="Revoke key").click()
    expect(row.locator(".badge")).to_contain_text("revoked")
    assert httpx.get(service.url + "/v1/models", headers={"Authorization": f"Bearer {token}"}).status_code == 401

    nav.get_by_role("link", name="Collections").click()
    table = page.locator("#collections-table")
    expect(table.locator("tr", has_text="scratch")).to_contain_text("1")
    page.get_by_role("button", name="Drop collection scratch").click()
    page.get_by_role("dialog", name="Drop collection scratch?").get_by_role("button", name="Drop collection").click()
    expect(page.locator("#collections-status")).to_have_text("Collection scratch dropped.")
    expect(table.locator("tr", has_text="scratch")).to_have_count(0)
    expect(page.locator("#collection option", has_text="scratch")).to_have_count(0)


def test_a_reader_has_no_admin_views_and_the_server_refuses_them(page: Page, service: Service) -> None:
    """A reader's navigation has no Keys or Collections; opening their address shows a refusal, and the API
    itself answers 403 to the reader's key."""
    sign_in(page, service, "reader")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Ask")).to_be_visible()
    expect(nav.get_by_role("link", name="Keys")).to_be_hidden()
    expect(nav.get_by_role("link", name="Collections")).to_be_hidden()
    page.goto(service.url + "/#/keys")
    expect(page.get_by_text("Keys are managed by administrators")).to_be_visible()
    expect(page.locator("#key-form")).to_be_hidden()
    status = page.evaluate(
        """async () => {
            const key = sessionStorage.getItem('cairn.key');
            return (await fetch('/v1/keys', {headers: {Authorization: 'Bearer ' + key}})).status;
        }"""
    )
    assert status == 403


def test_a_reader_outside_the_acl_never_gets_the_document_in_answers(page: Page, service: Service) -> None:
    """The handbook is for group hr: the editor (hr) gets its answer, the reader (sales) asking the same question
    gets neither the answer nor a citation of it."""
    sign_in(page, service, "editor")
    ask(page, PARENTAL)
    expect(page.locator("#citations")).to_contain_text("employee-handbook.md")

    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("API key", exact=True).fill(service.tokens["reader"])
    page.get_by_role("button", name="Sign in").click()
    card = ask(page, PARENTAL)
    expect(card.locator("#answer")).not_to_contain_text("120 days")
    expect(card.locator("#citations")).not_to_contain_text("employee-handbook")


def test_document_markup_is_shown_as_text_and_nothing_remote_is_loaded(page: Page, service: Service) -> None:
    """A passage holding <img> tags and Markdown images and links shows them as literal text: no image or link
    element comes from it and the browser requests nothing from the hosts it names."""
    remote: list[str] = []

    def watch(request: Request) -> None:
        if not request.url.startswith(service.url):
            remote.append(request.url)

    page.on("request", watch)
    sign_in(page, service, "reader")
    card = ask(page, "How often is the Zephyr lighthouse beacon serviced?")
    card.locator(".chip", has_text="lighthouse.txt").first.click()
    passage = page.get_by_role("dialog").locator("blockquote")
    expect(passage).to_contain_text('<img src="http://127.0.0.1:9/pixel.png" alt="tracker">')
    expect(passage).to_contain_text("![logo](http://127.0.0.1:9/logo.png)")
    assert page.locator("main img, dialog img").count() == 0
    assert page.locator("a[href^='http']").count() == 0
    assert remote == []


def test_keyboard_alone_signs_in_asks_and_opens_a_citation(page: Page, service: Service) -> None:
    """With the keyboard only: type the key and press Enter, type a question and press Enter, Tab to the first
    citation with a visible focus ring, Enter opens it, Escape closes it and focus returns to the citation."""
    page.goto(service.url + "/")
    key = page.get_by_label("API key", exact=True)
    expect(key).to_be_focused()
    page.keyboard.type(service.tokens["editor"])
    page.keyboard.press("Enter")
    question = page.get_by_label("Question")
    expect(question).to_be_focused()
    page.keyboard.type(PARENTAL)
    page.keyboard.press("Enter")
    expect(page.locator("#answer-card")).to_have_attribute("data-state", "done")

    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Ask", exact=True)).to_be_focused()
    page.keyboard.press("Tab")
    first = page.locator("#answer .cite-ref").first
    expect(first).to_be_focused()
    assert first.evaluate("b => getComputedStyle(b).outlineStyle") != "none", "the focus must be visible"
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading", level=2)).to_be_focused()
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Close").first).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(first).to_be_focused()

    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("button", name="Ask", exact=True)).to_be_focused()


def test_the_main_flow_fits_a_phone_screen(browser: Browser, service: Service) -> None:
    """At 390×844 (a phone), sign-in, asking and a citation dialog fit the width with no sideways scrolling."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone = context.new_page()
    try:
        sign_in(phone, service, "editor")
        ask(phone, PARENTAL)
        expect(phone.locator("#citations .chip").first).to_be_visible()
        assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        phone.screenshot(path=str(artifact("phone-answer.png")), full_page=True)
        phone.locator("#citations .chip").first.click()
        dialog = phone.get_by_role("dialog")
        expect(dialog).to_be_visible()
        box = dialog.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= 390
        phone.screenshot(path=str(artifact("phone-citation.png")))
        dialog.get_by_role("button", name="Close", exact=True).last.click()
        phone.get_by_role("link", name="Jobs").click()
        expect(phone.get_by_role("heading", name="Ingest jobs")).to_be_visible()
        assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        context.close()
