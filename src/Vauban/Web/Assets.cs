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
