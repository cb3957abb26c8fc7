// dtm dashboard: swaps in the updates pushed on the server-sent events
// stream. The page is complete without this script.
(function () {
	"use strict";
	var live = document.getElementById("live");
	var url = document.body.getAttribute("data-events");
	if (!window.EventSource || !url || !live) {
		return;
	}
	function say(state, text) {
		live.setAttribute("data-state", state);
		if (live.textContent !== text) {
			live.textContent = text;
		}
	}
	function fragment(html) {
		var t = document.createElement("template");
		t.innerHTML = html;
		return t.content;
	}
	// replace swaps old for the new markup, keeping open <details> open and
	// the keyboard focus where it was (by element id).
	function replace(old, html) {
		var open = [];
		old.querySelectorAll("details[open]").forEach(function (d) { open.push(d.id); });
		var focused = document.activeElement && old.contains(document.activeElement) ? document.activeElement.id : "";
		var next = fragment(html).firstElementChild;
		if (!next) {
			return;
		}
		old.replaceWith(next);
		open.forEach(function (id) {
			var d = id && document.getElementById(id);
			if (d) { d.open = true; }
		});
		var f = focused && document.getElementById(focused);
		if (f) { f.focus({ preventScroll: true }); }
	}
	function apply(u) {
		var gen = document.getElementById("generated");
		if (u.generatedISO && gen) {
			gen.setAttribute("datetime", u.generatedISO);
			gen.textContent = u.generated;
		}
		if (u.error) {
			say("error", u.error);
			return;
		}
		var nav = document.getElementById("nav");
		if (nav && u.nav && nav.getAttribute("data-hash") !== u.navHash) {
			replace(nav, u.nav);
		}
		var box = document.getElementById("practices");
		var ids = Array.prototype.map.call(box.querySelectorAll(":scope > section.practice"), function (s) { return s.id; });
		var same = ids.length === u.sections.length && u.sections.every(function (s, i) { return s.id === ids[i]; });
		if (!same) {
			box.replaceChildren(fragment(u.sections.map(function (s) { return s.html; }).join("") ||
				"<p class=\"empty\">No practices to show.</p>"));
		} else {
			u.sections.forEach(function (s) {
				var old = document.getElementById(s.id);
				if (old.getAttribute("data-hash") !== s.hash) {
					replace(old, s.html);
				}
			});
		}
		say("live", "Live updates on.");
	}
	var es = new EventSource(url);
	es.addEventListener("update", function (e) {
		try {
			apply(JSON.parse(e.data));
		} catch (err) {
			say("error", "Live updates failed; reload the page.");
		}
	});
	es.onopen = function () { say("live", "Live updates on."); };
	es.onerror = function () {
		if (es.readyState === EventSource.CLOSED) {
			say("static", "Live updates stopped: reload for new figures.");
		} else {
			say("error", "Live updates interrupted; reconnecting.");
		}
	};
})();
