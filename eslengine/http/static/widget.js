/* eslengine "call me" widget: a phone-number field, a button, and the
   call's status in words, for any page. No framework. The server fills in
   the configuration below (eslengine/http/widget.py). Mounts into every
   element with a data-eslengine-widget attribute, or after its own script
   tag when there is none. */
(function () {
  "use strict";
  var cfg = __ESLENGINE_CONFIG__;
  var me = document.currentScript;
  var base = me ? new URL(me.src, document.baseURI).origin : "";
  var FINAL = { completed: 1, failed: 1, cancelled: 1 };
  var NO_ANSWER = { NO_ANSWER: 1, NO_USER_RESPONSE: 1, ALLOTTED_TIMEOUT: 1, ORIGINATOR_CANCEL: 1 };

  function el(tag, attrs) {
    var node = document.createElement(tag);
    for (var name in attrs) { node.setAttribute(name, attrs[name]); }
    return node;
  }

  function fill(text, values) {
    return String(text).replace(/\{(\w+)\}/g, function (all, key) {
      return values && values[key] !== undefined ? values[key] : all;
    });
  }

  function hex(buffer) {
    var bytes = new Uint8Array(buffer), out = "";
    for (var i = 0; i < bytes.length; i++) { out += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16); }
    return out;
  }

  function zeroBits(buffer, bits) {
    var bytes = new Uint8Array(buffer);
    for (var i = 0; bits > 0; i++, bits -= 8) {
      var mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
      if (bytes[i] & mask) { return false; }
    }
    return true;
  }

  /* The proof of work a resource under attack asks for: a nonce whose
     SHA-256 of "<token>:<nonce>" starts with `bits` zero bits. */
  function solve(token, bits) {
    var encoder = new TextEncoder();
    var n = 0;
    function step() {
      var batch = [];
      for (var k = 0; k < 256; k++, n++) {
        batch.push(crypto.subtle.digest("SHA-256", encoder.encode(token + ":" + n.toString(16))));
      }
      var first = n - 256;
      return Promise.all(batch).then(function (digests) {
        for (var j = 0; j < digests.length; j++) {
          if (zeroBits(digests[j], bits)) { return (first + j).toString(16); }
        }
        return step();
      });
    }
    return step();
  }

  function mount(host) {
    var uid = "eslw-" + Math.random().toString(36).slice(2, 8);
    var texts = cfg.texts;
    var session = null;
    var busy = false;
    var form = el("form", { "class": "eslengine-widget", novalidate: "" });
    var label = el("label", { "for": uid + "-number" });
    var input = el("input", { id: uid + "-number", name: "number", type: "tel", autocomplete: "tel",
                              inputmode: "tel", required: "", "aria-describedby": uid + "-status" });
    var button = el("button", { type: "submit" });
    var status = el("p", { id: uid + "-status", role: "status", "aria-live": "polite",
                           "class": "eslengine-status" });
    label.style.display = "block";
    input.style.margin = "0.25em 0.5em 0.25em 0";
    form.appendChild(label);
    form.appendChild(input);
    form.appendChild(button);
    form.appendChild(status);
    host.appendChild(form);

    function words() {
      label.textContent = texts.label;
      button.textContent = texts.button;
    }

    function say(key, values) {
      status.textContent = fill(texts[key] || texts.error, values || texts);
      status.setAttribute("data-state", key);
    }

    function sayText(text, state) {
      status.textContent = text;
      status.setAttribute("data-state", state);
    }

    function done() {
      busy = false;
      button.disabled = false;
    }

    function load() {
      return fetch(base + cfg.session, { credentials: "omit" }).then(function (r) {
        return r.json().then(function (body) {
          if (r.status !== 200) { throw body; }
          session = body;
          session.at = Date.now();
          texts = body.texts;
          words();
          if (!body.open) { say("closed", { opens: body.opens }); }
          return body;
        });
      });
    }

    function fresh() {
      if (session && Date.now() - session.at < (session.expires_in - 30) * 1000) { return Promise.resolve(session); }
      return load();
    }

    function show(update) {
      var call = update.call || {};
      var st = update.status;
      var visitorFirst = session && session.visitor_first;
      if (st === "queued" || st === "dialing" || st === "ringing") {
        say(visitorFirst ? "calling" : "connecting", texts);
      } else if (st === "answered") {
        say(visitorFirst ? "connecting" : "calling", texts);
      } else if (st === "bridged") {
        say("connected");
      } else if (st === "completed") {
        say("ended");
      } else if (st === "failed" || st === "cancelled" || st === "skipped_dnc") {
        var visitor = call.failed_party === (session ? session.visitor_party : "b");
        if (visitor && call.hangup_cause === "USER_BUSY") { say("busy"); }
        else if (visitor && NO_ANSWER[call.hangup_cause]) { say("no_answer"); }
        else if (!visitor && call.failed_party) { say("unreachable", texts); }
        else { say("failed"); }
      }
    }

    function follow(placed) {
      var source = new EventSource(base + placed.events);
      source.addEventListener("status", function (ev) {
        var update = JSON.parse(ev.data);
        show(update);
        if (FINAL[update.status]) { source.close(); done(); }
      });
      source.addEventListener("gone", function () { source.close(); done(); });
    }

    function refused(code, body) {
      if (code === 422) {
        input.setAttribute("aria-invalid", "true");
        sayText(body.message || body.reason || texts.error, "invalid");
        input.focus();
      } else if (code === 429) {
        say("rate_limited");
      } else if (body && body.error === "closed") {
        sayText(body.message, "closed");
      } else {
        if (body && body.error === "token_invalid") { session = null; }
        sayText((body && body.message) || texts.error, "error");
      }
      done();
    }

    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (busy) { return; }
      busy = true;
      button.disabled = true;
      input.removeAttribute("aria-invalid");
      say("working");
      fresh().then(function (s) {
        if (!s.open) { say("closed", { opens: s.opens }); done(); return null; }
        var nonce = s.challenge ? solve(s.token, s.challenge.bits) : Promise.resolve(null);
        return nonce.then(function (n) {
          return fetch(base + cfg.calls, {
            method: "POST", credentials: "omit", headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ number: input.value, token: s.token, nonce: n })
          }).then(function (r) {
            return r.json().then(function (body) {
              if (r.status === 202) { say(s.visitor_first ? "calling" : "connecting", texts); follow(body); }
              else { refused(r.status, body); }
            });
          });
        });
      }).catch(function (body) {
        sayText((body && body.message) || texts.error, "error");
        done();
      });
    });

    words();
    load().catch(function (body) { sayText((body && body.message) || texts.error, "error"); });
  }

  var hosts = document.querySelectorAll("[data-eslengine-widget]");
  if (hosts.length === 0 && me) {
    var holder = document.createElement("div");
    me.parentNode.insertBefore(holder, me.nextSibling);
    hosts = [holder];
  }
  for (var i = 0; i < hosts.length; i++) { mount(hosts[i]); }
}());
