// cityhub web UI: small progressive enhancements; every page also works without this file and without htmx.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  // htmx requests carry the session's CSRF token as a header too (forms also post it as a field).
  document.addEventListener("htmx:configRequest", function (event) {
    if (meta) { event.detail.headers["X-CSRF-Token"] = meta.getAttribute("content"); }
  });
  // A form sent back with a problem: the first field it marks takes the focus, so that a keyboard user types the
  // missing 理由 at once (the page came back with the focus at its top, the field below the menu, facts and trail).
  document.addEventListener("DOMContentLoaded", function () {
    var first = document.querySelector('main [aria-invalid="true"]');
    if (first && !document.querySelector("[autofocus]")) { first.focus(); }
  });
  // "Use" beside a suggested category fills the intake form's category select, and the focus goes with it: the
  // change refreshes the suggestions, whose swap would take the focused button away and drop a keyboard user's focus
  // to the top of the page (the operator Tabbed back from the menu to submit).
  // So does 特急 suggested for a safety matter (data-pick-urgency) in the urgency select.
  var picks = { "data-pick-category": "f-category_id", "data-pick-urgency": "f-urgency" };
  document.addEventListener("click", function (event) {
    Object.keys(picks).forEach(function (attribute) {
      var button = event.target.closest("[" + attribute + "]");
      var select = button && document.getElementById(picks[attribute]);
      if (select) {
        select.value = button.getAttribute(attribute);
        select.focus();
        select.dispatchEvent(new Event("change", { bubbles: true }));
      }
    });
  });
  // Folded filters (data-open-wide) stay open where the screen has room for them.
  if (window.matchMedia && window.matchMedia("(min-width: 701px)").matches) {
    document.querySelectorAll("details[data-open-wide]").forEach(function (d) { d.open = true; });
  } else if (window.matchMedia) {
    // …and those sent open, so that a wide screen reads them without this file (data-fold-narrow), fold on a phone.
    document.querySelectorAll("details[data-fold-narrow]").forEach(function (d) { d.open = false; });
  }
  // Controls that need this file (data-js-only) are hidden until it runs.
  document.querySelectorAll("[data-js-only]").forEach(function (el) { el.hidden = false; });
  // A "tick all" box (data-check-all="NAME") ticks or clears every checkbox named NAME (the queue's bulk dispatch).
  document.addEventListener("change", function (event) {
    var name = event.target.getAttribute && event.target.getAttribute("data-check-all");
    if (!name) { return; }
    document.querySelectorAll('input[type="checkbox"][name="' + name + '"]').forEach(function (box) {
      box.checked = event.target.checked;
    });
  });
  // A file input with its limits (data-max-bytes, data-max-count: _macros.file_limits) leaves out at once a file
  // too large, or those past the count (the files held for its form among them), and says so beside it — a phone sent 25 MB before the server refused them.
  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!input.hasAttribute || input.type !== "file" || !input.hasAttribute("data-max-bytes")) { return; }
    var most = Number(input.getAttribute("data-max-bytes")), count = Number(input.getAttribute("data-max-count"));
    // The files held for the form (已保留的附件, _macros.held_list) not ticked 移除 are sent with it: they count.
    var held = input.form ? input.form.querySelectorAll('input[name="held_remove"]:not(:checked)').length : 0;
    var tooMany = input.getAttribute("data-too-many");
    if (held) {
      count = Math.max(count - held, 0);
      tooMany = input.getAttribute("data-too-many-held").replace("{room}", String(count));
    }
    var kept = new DataTransfer(), said = [];
    Array.prototype.forEach.call(input.files, function (file) {
      if (file.size > most) {
        said.push(input.getAttribute("data-too-large").replace("{name}", file.name));
      } else if (kept.items.length >= count) {
        if (said.indexOf(tooMany) < 0) { said.push(tooMany); }
      } else {
        kept.items.add(file);
      }
    });
    var note = document.getElementById(input.id + "-picked");
    if (!note) {
      note = document.createElement("small");
      note.id = input.id + "-picked";
      note.className = "field-error";
      note.setAttribute("role", "alert");
      note.setAttribute("data-testid", "files-picked-refused");
      input.insertAdjacentElement("afterend", note);
    }
    note.textContent = said.join(" ");
    note.hidden = !said.length;
    if (said.length) { input.files = kept.files; }
  });
  // The order page's place correction names the unit chosen where it offers place aliases (data-chosen-place).
  document.addEventListener("change", function (event) {
    var select = event.target;
    if (!select.form || select.name !== "unit_id") { return; }
    var shown = select.form.querySelector("[data-chosen-place]"), option = select.selectedOptions[0];
    if (shown && option) { shown.textContent = option.getAttribute("data-unit-name") || option.textContent; }
  });
  // A form marked data-confirm (what cannot be undone: deleting a rule or a time limit, revoking a key) asks first;
  // so does a button marked so (受理并并入 on the intake form, whose other buttons do not ask).
  document.addEventListener("submit", function (event) {
    var button = event.submitter, form = event.target;
    var message = (button && button.getAttribute("data-confirm")) || (form.getAttribute && form.getAttribute("data-confirm"));
    if (message && !window.confirm(message)) { event.preventDefault(); }
  });
  // A form marked data-submit-once (the intake form: every post is a new order) is sent once: a double click or a
  // second tap while the answer is on its way would register the appeal twice. Its buttons stay enabled (a disabled
  // button's name and value would not be sent); the page coming back from the history lets it be sent again.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || !form.hasAttribute || !form.hasAttribute("data-submit-once")) { return; }
    if (form.getAttribute("data-submitting") === "1") { event.preventDefault(); return; }
    form.setAttribute("data-submitting", "1");
  });
  // The intake form (data-enter-next): Enter in a one-line field goes on to the next field instead of registering a
  // half-typed call (an input method's word accepted with Enter, or habit); the form's disabled default button stops
  // the browser's implicit submission without this file. Enter while an input method composes is the method's.
  // Ctrl+Enter (⌘+Enter) anywhere in it registers the appeal, as its button does (data-submit-key): at the hotline's
  // desk the caller's words end in the content's box, five Tabs above the button.
  document.addEventListener("keydown", function (event) {
    var field = event.target, form = field.form;
    if (event.key !== "Enter" || event.isComposing || event.keyCode === 229 || !form) { return; }
    if (!form.hasAttribute("data-enter-next")) { return; }
    if (event.ctrlKey || event.metaKey) {
      var register = form.querySelector("[data-submit-key]");
      event.preventDefault();
      if (register && !event.repeat) { form.requestSubmit(register); }
      return;
    }
    if (field.tagName !== "INPUT") { return; }
    if (/^(submit|button|reset|checkbox|radio|file|image)$/.test(field.type)) { return; }
    event.preventDefault();
    var fields = Array.prototype.filter.call(form.elements, function (el) {
      return el.type !== "hidden" && !el.disabled && el.tabIndex >= 0 && el.getClientRects().length > 0;
    });
    var next = fields[fields.indexOf(field) + 1];
    if (next) { next.focus(); }
  });
  // 清空，接下一个来电 (data-confirm-typed) asks first when something was typed or chosen: a half-typed call is not
  // thrown away by a stray key; an untouched form is cleared at once.
  document.addEventListener("click", function (event) {
    var link = event.target.closest("[data-confirm-typed]");
    if (!link) { return; }
    var form = link.closest("form"), typed = false;
    Array.prototype.forEach.call(form ? form.elements : [], function (el) {
      if (el.type === "hidden" || el.disabled) { return; }
      if (el.type === "file") { typed = typed || el.files.length > 0; }
      else if (el.tagName === "SELECT") { typed = typed || el.selectedIndex !== initialIndex(el); }
      else if (el.type !== "submit" && el.type !== "button") { typed = typed || el.value.trim() !== ""; }
    });
    if (typed && !window.confirm(link.getAttribute("data-confirm-typed"))) { event.preventDefault(); }
  });
  // 无效来电's buttons (data-confirm-content) record the call and drop the form: they ask first once the appeal's words
  // (title, content) were typed — a misclick on 挂断 threw a half-typed appeal away; the phone alone, which they record,
  // asks nothing.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-confirm-content]");
    if (!button || !button.form) { return; }
    var typed = ["title", "content"].some(function (name) {
      var field = button.form.elements[name];
      return Boolean(field) && field.value.trim() !== "";
    });
    if (typed && !window.confirm(button.getAttribute("data-confirm-content"))) { event.preventDefault(); }
  });
  // The option a select shows before anyone chose: the one marked selected, else its first one not disabled.
  function initialIndex(select) {
    var options = Array.prototype.slice.call(select.options);
    var marked = options.findIndex(function (o) { return o.defaultSelected; });
    return marked >= 0 ? marked : options.findIndex(function (o) { return !o.disabled; });
  }
  // From the question to its answers on the spot (data-skip-answers): shown while the suggestions hold a 秒回 button,
  // it takes the focus to the first of them (they lie past the form's other fields, buttons and the caller's list).
  var MERGE_BUTTON = "#assistance button[name=merge_into]";
  function skipToAnswers() {
    var skip = document.querySelector("[data-skip-answers]");
    if (skip) { skip.hidden = !document.querySelector("#assistance [data-testid=kb] button"); }
    // A citizen's: to the public answers that may solve their problem (常见问题解答), below the form on a phone.
    skip = document.querySelector("[data-skip-faq]");
    if (skip) { skip.hidden = !document.querySelector("#assistance #faq"); }
    // After the address: to 受理并并入, while an open order the call repeats is listed (data-skip-merge).
    skip = document.querySelector("[data-skip-merge]");
    if (skip) { skip.hidden = !document.querySelector(MERGE_BUTTON); }
  }
  skipToAnswers();
  document.addEventListener("htmx:afterSettle", skipToAnswers);
  document.addEventListener("click", function (event) {
    var link = event.target.closest("[data-skip-answers] a"), answer;
    answer = link && document.querySelector("#assistance [data-testid=kb] button");
    if (answer) { event.preventDefault(); answer.focus(); }
    link = event.target.closest("[data-skip-merge] a");
    answer = link && document.querySelector(MERGE_BUTTON);
    if (answer) { event.preventDefault(); answer.focus(); }
  });
  // 使用当前位置 (the patrol and the citizen's form on a phone): the device's position into the form's lat/lng.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-locate]");
    if (!button || !navigator.geolocation) { return; }
    var form = button.form, status = form.querySelector("[data-locate-status]");
    status.textContent = button.getAttribute("data-locating");
    navigator.geolocation.getCurrentPosition(function (position) {
      var lat = position.coords.latitude.toFixed(6), lng = position.coords.longitude.toFixed(6);
      form.querySelector('input[name="lat"]').value = lat;
      form.querySelector('input[name="lng"]').value = lng;
      status.textContent = button.getAttribute("data-located").replace("{position}", lat + ", " + lng);
      // the suggestions place the appeal afresh, as they do when the address is typed
      form.querySelector('input[name="lat"]').dispatchEvent(new Event("change", { bubbles: true }));
    }, function () {
      status.textContent = button.getAttribute("data-unlocated");
    }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
  });
  // A table wider than the screen scrolls sideways inside its .table-wrap: such a wrapper takes the keyboard focus,
  // so the arrow keys scroll it too (on a phone, or a wide table in a narrow column); the others stay out of the
  // tab order.
  function keyboardScrollers() {
    document.querySelectorAll(".table-wrap").forEach(function (wrap) {
      if (wrap.scrollWidth > wrap.clientWidth + 1) {
        wrap.setAttribute("tabindex", "0");
      } else if (wrap.getAttribute("tabindex") === "0") {
        wrap.removeAttribute("tabindex");
      }
    });
  }
  keyboardScrollers();
  window.addEventListener("resize", keyboardScrollers);
  // A bar stuck at the top of the page (the queue's bulk dispatch, .bulk-bar) keeps what the keyboard focuses clear of
  // it: the page's scroll padding is the bar's height while it sticks (Shift+Tab hid every other step under it).
  var stuck = document.querySelector(".bulk-bar");
  function clearOfStuckBar() {
    var sticks = stuck && window.getComputedStyle(stuck).position === "sticky";
    document.documentElement.style.scrollPaddingTop = sticks ? stuck.offsetHeight + 8 + "px" : "";
  }
  if (stuck) {
    clearOfStuckBar();
    window.addEventListener("resize", clearOfStuckBar);
  }
  document.addEventListener("htmx:afterSettle", keyboardScrollers);
  // A list that lends its options (data-options-from="ID"): the queue's manual dispatch of each order without a
  // suggestion takes the bulk bar's units, the order page's forms take the first form's units and categories, so a
  // page carries the district's ~400 units and ~650 categories once, not once a form. The borrower keeps its own
  // options without a value (—) and its choice (the one it held until now, data-until-borrowed, is replaced by the
  // lent copy); data-options-except="ID ID" leaves values out (退单 does not offer the unit returning it); an element
  // marked data-options-here (the 分类 form's 全部分类 group) takes the options in place of the select.
  document.querySelectorAll("select[data-options-from]").forEach(function (select) {
    var source = document.getElementById(select.getAttribute("data-options-from"));
    if (!source) { return; }
    var except = (select.getAttribute("data-options-except") || "").split(" ");
    var into = select.querySelector("[data-options-here]") || select;
    var chosen = select.value;
    select.querySelectorAll("[data-until-borrowed]").forEach(function (held) { held.remove(); });
    function lent(option) {
      if (!option.value || except.indexOf(option.value) !== -1) { return null; }
      var copy = option.cloneNode(true);
      copy.removeAttribute("selected");
      return copy;
    }
    Array.prototype.forEach.call(source.children, function (child) {
      if (child.tagName !== "OPTGROUP") {
        var one = lent(child);
        if (one) { into.appendChild(one); }
        return;
      }
      // a group within the group taking them would be no HTML: its options then go in flat
      var group = into === select ? child.cloneNode(false) : into;
      Array.prototype.forEach.call(child.children, function (option) {
        var copy = lent(option);
        if (copy) { group.appendChild(copy); }
      });
      if (group !== into && group.children.length) { select.appendChild(group); }
    });
    select.value = chosen;
  });
  // A long list to choose from (data-filter="its placeholder": the district's ~400 units, the categories) gets a box
  // before it on a wide screen: what is typed — a name, with any input method, which a select's own type-ahead does
  // not take — leaves in the list only the options holding it, and chooses the one left. (A phone's own picker
  // scrolls its list; the box would only lengthen the page.)
  function filterable() {
    if (!window.matchMedia || !window.matchMedia("(min-width: 701px)").matches) { return; }
    document.querySelectorAll("select[data-filter]").forEach(function (select) {
      if (select.options.length < 30 || select.getAttribute("data-filtered")) { return; }
      select.setAttribute("data-filtered", "1");
      var box = document.createElement("input");
      box.type = "search";
      box.className = "select-filter";
      box.placeholder = select.getAttribute("data-filter");
      box.setAttribute("aria-label", select.getAttribute("data-filter"));
      box.setAttribute("data-testid", "select-filter");
      box.addEventListener("input", function () {
        var typed = box.value.trim().toLowerCase(), left = [];
        Array.prototype.forEach.call(select.options, function (option) {
          if (!option.value) { return; }
          option.hidden = typed !== "" && option.textContent.toLowerCase().indexOf(typed) === -1;
          if (!option.hidden) { left.push(option); }
        });
        select.querySelectorAll("optgroup").forEach(function (group) {
          group.hidden = !Array.prototype.some.call(group.children, function (o) { return !o.hidden; });
        });
        if (typed && left.length === 1 && select.value !== left[0].value) {
          select.value = left[0].value;
          select.dispatchEvent(new Event("change", { bubbles: true }));
        }
      });
      // Enter in the box goes on to the list, never sends the form with a choice not yet seen.
      box.addEventListener("keydown", function (event) {
        if (event.key === "Enter") { event.preventDefault(); select.focus(); }
      });
      select.parentNode.insertBefore(box, select);
    });
  }
  filterable();
  document.addEventListener("htmx:afterSettle", filterable);
  // A link to a file the server makes first (data-busy: the 专报's PDF and Excel, 2–5 s with charts) says so at once
  // — its words data-busy, a screen reader told data-busy-said by the status line beside it — instead of nothing
  // happening under the thumb; the file is fetched, then saved under the name the server gives, and the link reads
  // as before. A second tap meanwhile does nothing. Without this file, a fetch or a modified click, or when the answer
  // is not the file (a refusal), the link is followed as a plain link.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-busy]");
    if (!link || event.defaultPrevented || event.button !== 0) { return; }
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) { return; }
    if (!window.fetch || !window.URL || !URL.createObjectURL) { return; }
    event.preventDefault();
    if (link.getAttribute("aria-busy") === "true") { return; }
    var label = link.innerHTML, href = link.href;
    var area = link.parentNode.closest("p, li, div"), status = area && area.querySelector('[role="status"]');
    function done(message) {
      link.innerHTML = label;
      link.removeAttribute("aria-busy");
      if (status) { status.textContent = message || ""; }
    }
    link.setAttribute("aria-busy", "true");
    link.textContent = link.getAttribute("data-busy");
    if (status) { status.textContent = link.getAttribute("data-busy-said") || link.getAttribute("data-busy"); }
    fetch(href, { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) { throw new Error(String(response.status)); }
      var named = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
      return response.blob().then(function (blob) {
        var url = URL.createObjectURL(blob), save = document.createElement("a");
        save.href = url;
        save.download = named ? named[1] : "";
        document.body.appendChild(save);
        save.click();
        save.remove();
        window.setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
        done();
      });
    }).catch(function () {
      done();
      window.location.href = href;
    });
  });
  // 待派单 by keyboard (data-queue-keys on the queue's list): J / K the next / previous order — the focus on its first
  // 派至 button (else its manual unit list, else its number), Enter sends it there —, X ticks it for 批量派单, / goes to
  // the search box. Not while typing in a field, with a modifier, or while an input method composes.
  document.addEventListener("keydown", function (event) {
    var list = document.querySelector("[data-queue-keys]");
    if (!list || event.ctrlKey || event.metaKey || event.altKey || event.isComposing || event.keyCode === 229) { return; }
    var target = event.target;
    if (target.isContentEditable || /^(INPUT|SELECT|TEXTAREA)$/.test(target.tagName) && target.type !== "checkbox" && target.type !== "radio") { return; }
    var items = Array.prototype.slice.call(list.querySelectorAll("article.queue-item"));
    var current = target.closest ? target.closest("article.queue-item") : null;
    var key = event.key.toLowerCase();
    if (key === "/") {
      var search = document.getElementById("queue-q");
      if (search) { event.preventDefault(); search.focus(); search.select(); }
    } else if ((key === "j" || key === "k") && items.length) {
      var at = items.indexOf(current);
      var next = items[key === "j" ? (at < 0 ? 0 : Math.min(at + 1, items.length - 1)) : (at < 0 ? 0 : Math.max(at - 1, 0))];
      var goal = next.querySelector(".candidates button[type=submit]") || next.querySelector("form.manual-dispatch:not([hidden]) select")
        || next.querySelector(".item-title a");
      event.preventDefault();
      goal.focus();
      next.scrollIntoView({ block: "center" });
    } else if (key === "x" && current) {
      var pick = current.querySelector("input[name=pick]");
      if (pick) { event.preventDefault(); pick.click(); }
    }
  });
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-submitting]").forEach(function (f) { f.removeAttribute("data-submitting"); });
  });
})();
