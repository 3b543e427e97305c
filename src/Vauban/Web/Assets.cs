// The staff pages' only stylesheet and script, served from the application (CSP: 'self', no inline code).
namespace Vauban.Web;

internal static class Assets
{
    public const string Css = """
        :root { --ink: #1d2733; --muted: #5b6776; --line: #d5dbe3; --accent: #0b5cad; --bad: #b42318; --paper: #f6f8fa; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--paper); }
        header { background: #fff; border-bottom: 1px solid var(--line); padding: .75rem 1.5rem; display: flex; justify-content: space-between; align-items: center; }
        header strong { letter-spacing: .04em; }
        main { max-width: 32rem; margin: 2.5rem auto; background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 2rem; }
        h1 { font-size: 1.4rem; margin: 0 0 1rem; }
        label { display: block; margin: 1rem 0 .25rem; font-weight: 600; }
        label.inline { display: inline; margin: 0 0 0 .35rem; font-weight: normal; }
        main.wide { max-width: 64rem; }
        @media (max-width: 68rem) { main.wide { margin: 1rem auto; max-width: calc(100% - 2rem); padding: 1.25rem; } }
        header form, header button { margin: 0; }
        input[type=text], input[type=email], input[type=password], input[type=date], input[type=time], input[type=datetime-local], input[type=number],
        input[type=search], input[type=tel], textarea { width: 100%; padding: .55rem .65rem; border: 1px solid var(--line); border-radius: 6px; font: inherit; }
        textarea { min-height: 6rem; resize: vertical; }
        select { width: 100%; padding: .5rem .6rem; border: 1px solid var(--line); border-radius: 6px; font: inherit; background: #fff; }
        details.cancel summary { cursor: pointer; color: var(--accent); white-space: nowrap; }
        details.cancel[open] summary { margin-bottom: .35rem; }
        form.cancel label { margin: 0 0 .15rem; font-weight: normal; font-size: .85rem; color: var(--muted); }
        form.cancel select, form.cancel input { min-width: 12rem; margin-bottom: .35rem; }
        form.cancel button { margin-top: .25rem; }
        button, .button { display: inline-block; margin-top: 1.25rem; padding: .55rem 1.1rem; border: 0; border-radius: 6px; background: var(--accent); color: #fff; font: inherit; cursor: pointer; text-decoration: none; }
        button.secondary, a.button.secondary { background: #fff; color: var(--accent); border: 1px solid var(--accent); }
        .error { color: var(--bad); margin: 1rem 0 0; }
        .muted, small { color: var(--muted); }
        .codes { font-family: ui-monospace, monospace; font-size: 1.1rem; columns: 2; padding-left: 1.2rem; }
        .secret { font-family: ui-monospace, monospace; word-break: break-all; background: var(--paper); padding: .4rem; }
        .qr { width: 220px; height: 220px; display: block; margin: 1rem 0; }
        dl { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; }
        dt { color: var(--muted); }
        table { width: 100%; border-collapse: collapse; margin: 1rem 0; font-size: .95rem; }
        th, td { text-align: left; vertical-align: top; padding: .35rem .5rem; border-bottom: 1px solid var(--line); }
        th { color: var(--muted); font-weight: 600; }
        td.when { white-space: nowrap; }
        h2 { font-size: 1.1rem; margin: 1.75rem 0 .5rem; }
        nav a { margin-right: 1rem; }
        hr { border: 0; border-top: 1px solid var(--line); margin: 1.5rem 0; }
        [hidden] { display: none !important; }
        .session-notice { position: fixed; left: 50%; bottom: 1rem; transform: translateX(-50%); z-index: 10; max-width: 40rem; width: calc(100% - 2rem);
          background: #fff8e1; border: 1px solid #d4a72c; border-radius: 8px; padding: .75rem 1rem; box-shadow: 0 2px 8px rgba(0,0,0,.15); }
        .session-notice button { margin: 0 0 0 .5rem; }
        .session-notice.ended { background: #fdecea; border-color: var(--bad); }
        """;

    // The session notice (SessionNotice): from the end the page was given, a notice shows shortly before the idle time-out, with
    // "Stay signed in" (a POST with the page's antiforgery token, counted as activity), and says so once the session has ended.
    // Typing sends nothing to the server: without it, a prescription written for 15 minutes met an expired session on sending.
    public const string SessionScript = """
        "use strict";
        (function () {
          var notice = document.getElementById("session-notice");
          if (!notice) return;
          var text = document.getElementById("session-notice-text");
          var stay = document.getElementById("stay-signed-in");
          var warnBefore = Number(notice.getAttribute("data-warn-before")) * 1000;
          var renewable = notice.getAttribute("data-renewable") === "true";
          var endsAt = Date.now() + Number(notice.getAttribute("data-ends-in")) * 1000;
          var over = false;
          function left(ms) {
            var seconds = Math.ceil(ms / 1000);
            if (seconds < 60) return seconds + (seconds === 1 ? " second" : " seconds");
            var minutes = Math.ceil(seconds / 60);
            return minutes + (minutes === 1 ? " minute" : " minutes");
          }
          function token() { var input = document.querySelector("input[name=__RequestVerificationToken]"); return input ? input.value : ""; }
          function ended() {
            over = true;
            notice.hidden = false;
            notice.classList.add("ended");
            stay.hidden = true;
            text.textContent = (renewable ? "Your session has ended after " + notice.getAttribute("data-idle") + " without activity."
              : "Your session has ended: a session lasts at most " + notice.getAttribute("data-absolute") + ".")
              + " Nothing on this page was sent: copy what you typed before you open another page, then sign in again.";
          }
          function tick() {
            if (over) return;
            var remaining = endsAt - Date.now();
            if (remaining <= 0) { ended(); return; }
            if (remaining > warnBefore) { notice.hidden = true; return; }
            notice.hidden = false;
            stay.hidden = !renewable;
            text.textContent = renewable ? "Your session ends in " + left(remaining) + " without activity."
              : "Your session ends in " + left(remaining) + ": a session lasts at most " + notice.getAttribute("data-absolute") + ". Send what you are writing, then sign in again.";
          }
          stay.addEventListener("click", async function () {
            stay.disabled = true;
            try {
              var response = await fetch("/account/session", { method: "POST", credentials: "same-origin", headers: { "RequestVerificationToken": token() } });
              if (response.status === 400 || response.status === 401) { ended(); return; }
              if (!response.ok) throw new Error("the server answered " + response.status);
              var kept = await response.json();
              endsAt = Date.now() + kept.endsIn * 1000;
              renewable = kept.renewable;
              tick();
            } catch (e) {
              text.textContent = "The server could not be reached (" + e.message + "): try again.";
            } finally {
              stay.disabled = false;
            }
          });
          tick();
          setInterval(tick, 1000);
        })();
        """;

    // Passkey ceremonies: ask the page for WebAuthn options, run navigator.credentials.create/get, post the credential back.
    public const string PasskeyScript = """
        "use strict";
        (function () {
          function token() { var input = document.querySelector("input[name=__RequestVerificationToken]"); return input ? input.value : ""; }
          async function post(url, body) {
            var response = await fetch(url, { method: "POST", credentials: "same-origin", headers: { "RequestVerificationToken": token(), "Content-Type": "application/json" }, body: body });
            if (!response.ok) throw new Error("the server answered " + response.status);
            return response.json();
          }
          document.querySelectorAll("[data-passkey]").forEach(function (button) {
            button.addEventListener("click", async function (event) {
              event.preventDefault();
              var status = document.getElementById("passkey-status");
              var page = button.getAttribute("data-page") || location.pathname;
              var separator = page.indexOf("?") < 0 ? "?" : "&";
              try {
                status.textContent = "Follow your browser's instructions…";
                var options = await post(page + separator + "handler=PasskeyOptions", "{}");
                var credential = button.getAttribute("data-passkey") === "create"
                  ? await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options) })
                  : await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options) });
                var result = await post(page + separator + "handler=Passkey", JSON.stringify(credential));
                if (result.redirect) { location.href = result.redirect; return; }
                status.textContent = result.error || "The passkey was not accepted.";
              } catch (e) {
                status.textContent = "The passkey step did not complete (" + e.message + ").";
              }
            });
          });
        })();
        """;
}
