// The survey builder: a visual editor over the definition's JSON in the textarea it is given
// (data-target). Every change is written back to the textarea, which the form posts; the
// server validates it and names the field of any problem, which the builder then outlines.
// Without JavaScript the textarea is the editor.
(function () {
  "use strict";
  var root = document.getElementById("survey-builder");
  if (!root) return;
  var schema = JSON.parse(root.getAttribute("data-builder") || "{}");
  var area = document.getElementById(root.getAttribute("data-target"));
  var L = schema.labels || {};
  var spec;
  try { spec = JSON.parse(area.value || "{}"); } catch (e) { return; } // hand-broken JSON: leave the textarea
  spec.questions = spec.questions || [];

  function t(k) { return L[k] || k; }
  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") e.textContent = attrs[k];
      else if (k === "checked" || k === "selected" || k === "multiple") e[k] = !!attrs[k];
      else if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, attrs[k]);
    });
    (kids || []).forEach(function (c) { if (c) e.appendChild(c); });
    return e;
  }
  function save() { area.value = JSON.stringify(spec, null, 2); }
  function field(label, input) { return el("label", {}, [document.createTextNode(label), input]); }
  function text(obj, key, label, opts) {
    opts = opts || {};
    var i = el(opts.multiline ? "textarea" : "input", { type: opts.multiline ? undefined : "text", rows: opts.multiline ? 2 : undefined, maxlength: opts.max });
    i.value = obj[key] || "";
    i.addEventListener("input", function () { if (i.value) obj[key] = i.value; else delete obj[key]; save(); });
    return field(label, i);
  }
  function number(obj, key, label, integer) {
    var i = el("input", { type: "number", step: integer ? "1" : "any" });
    i.value = obj[key] === undefined || obj[key] === null ? "" : obj[key];
    i.addEventListener("input", function () {
      if (i.value === "") delete obj[key]; else obj[key] = Number(i.value);
      save();
    });
    return field(label, i);
  }
  function check(obj, key, label) {
    var i = el("input", { type: "checkbox", checked: obj[key] });
    i.addEventListener("change", function () { obj[key] = i.checked; save(); });
    return el("label", { "class": "sb-check" }, [i, document.createTextNode(label)]);
  }
  function select(options, value, onChange) {
    var s = el("select");
    options.forEach(function (o) { s.appendChild(el("option", { value: o[0], text: o[1], selected: o[0] === value })); });
    s.addEventListener("change", function () { onChange(s.value); });
    return s;
  }
  function localInput(obj, key, label) {
    var i = el("input", { type: "datetime-local" });
    if (obj[key]) {
      var d = new Date(obj[key]);
      if (!isNaN(d)) i.value = new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
    }
    i.addEventListener("change", function () {
      if (!i.value) delete obj[key]; else obj[key] = new Date(i.value).toISOString();
      save();
    });
    return field(label, i);
  }
  function nextID(list, prefix) {
    var used = {};
    list.forEach(function (x) { used[x.id] = true; });
    for (var n = 1; ; n++) if (!used[prefix + n]) return prefix + n;
  }

  function settings() {
    return el("div", { "class": "sb-settings", "data-path": "settings" }, [
      el("div", { "class": "sb-row" }, [text(spec, "title", t("survey_builder.title"), { max: 200 })]),
      el("div", { "class": "sb-row" }, [text(spec, "intro", t("survey_builder.help"), { multiline: true, max: 4000 }), text(spec, "thanks", t("survey_builder.thanks") || "thanks", { multiline: true, max: 4000 })]),
      el("div", { "class": "sb-row" }, [
        field(t("survey_builder.identify"), select([["link", t("survey_builder.identify_link")], ["phone", t("survey_builder.identify_phone")]], spec.identify || "link", function (v) { spec.identify = v; save(); })),
        localInput(spec, "starts_at", t("survey_builder.starts_at")),
        localInput(spec, "ends_at", t("survey_builder.ends_at")),
        check(spec, "allow_repeat", t("survey_builder.allow_repeat"))
      ])
    ]);
  }

  function tagSelect(opt) {
    var s = el("select", { multiple: true, size: 3, "aria-label": t("survey_builder.tags") });
    var groups = {};
    (schema.tags || []).forEach(function (tg) {
      if (!groups[tg.group]) { groups[tg.group] = el("optgroup", { label: tg.group }); s.appendChild(groups[tg.group]); }
      groups[tg.group].appendChild(el("option", { value: tg.id, text: tg.name, selected: (opt.tag_ids || []).indexOf(tg.id) >= 0 }));
    });
    if (!(schema.tags || []).length) s.appendChild(el("option", { disabled: "", text: t("survey_builder.no_tags") }));
    s.addEventListener("change", function () {
      var ids = Array.from(s.selectedOptions).map(function (o) { return Number(o.value); });
      if (ids.length) opt.tag_ids = ids; else delete opt.tag_ids;
      save();
    });
    return s;
  }

  function optionsEditor(q, qi) {
    var box = el("div", { "class": "sb-options" }, [el("strong", { text: t("survey_builder.options") })]);
    q.options = q.options || [];
    q.options.forEach(function (o, oi) {
      var label = el("input", { type: "text", placeholder: t("survey_builder.option_label"), maxlength: 200, "data-path": "questions[" + qi + "].options[" + oi + "].label" });
      label.value = o.label || "";
      label.addEventListener("input", function () { o.label = label.value; save(); });
      var value = el("input", { type: "text", placeholder: t("survey_builder.option_value"), maxlength: 200, "data-path": "questions[" + qi + "].options[" + oi + "].value" });
      value.value = o.value || "";
      value.addEventListener("input", function () { if (value.value) o.value = value.value; else delete o.value; save(); });
      var rm = el("button", { type: "button", "class": "button small ghost", text: "×", title: t("survey_builder.remove") });
      rm.addEventListener("click", function () { q.options.splice(oi, 1); render(); });
      box.appendChild(el("div", { "class": "sb-option", "data-path": "questions[" + qi + "].options[" + oi + "]" }, [el("span", { "class": "sb-id", text: o.id }), label, value, tagSelect(o), rm]));
    });
    var add = el("button", { type: "button", "class": "button small", text: "+ " + t("survey_builder.add_option") });
    add.addEventListener("click", function () { q.options.push({ id: nextID(q.options, "o"), label: "" }); render(); });
    box.appendChild(add);
    return box;
  }

  function mappingEditor(q) {
    var targets = [["", t("survey_builder.map_none")]].concat((schema.targets || []).map(function (x) { return [x, t("target." + x)]; }));
    var m = q.map || {};
    var kids = [field(t("survey_builder.map"), select(targets, m.target || "", function (v) {
      if (!v) delete q.map; else q.map = { target: v, attr: v === "custom" ? (q.map && q.map.attr) || "" : undefined };
      render();
    }))];
    if (m.target === "custom") {
      var attrs = [["", "—"]].concat((schema.attrs || []).map(function (a) { return [a.key, (a.label || a.key) + " (" + a.type + ")"]; }));
      kids.push(field(t("survey_builder.attr"), select(attrs, m.attr || "", function (v) { q.map.attr = v; save(); })));
    }
    return el("div", { "class": "sb-row" }, kids);
  }

  function question(q, qi) {
    var types = (schema.types || []).map(function (x) { return [x, t("type." + x)]; });
    var head = el("div", { "class": "sb-head" }, [el("span", { "class": "sb-id", text: q.id }), el("strong", { text: t("survey_builder.question") + " " + (qi + 1) })]);
    [["↑", t("survey_builder.up"), -1], ["↓", t("survey_builder.down"), 1]].forEach(function (b) {
      var btn = el("button", { type: "button", "class": "button small ghost", text: b[0], title: b[1] });
      btn.addEventListener("click", function () {
        var j = qi + b[2];
        if (j < 0 || j >= spec.questions.length) return;
        var x = spec.questions[qi]; spec.questions[qi] = spec.questions[j]; spec.questions[j] = x;
        render();
      });
      head.appendChild(btn);
    });
    var rm = el("button", { type: "button", "class": "button small danger", text: t("survey_builder.remove") });
    rm.addEventListener("click", function () { spec.questions.splice(qi, 1); render(); });
    head.appendChild(rm);
    var typeSel = select(types, q.type, function (v) {
      q.type = v;
      if (v === "single" || v === "multiple") { if (!q.options || q.options.length < 2) q.options = [{ id: "a", label: "" }, { id: "b", label: "" }]; } else delete q.options;
      if (v === "rating") q.scale = q.scale || 5; else delete q.scale;
      if (v !== "text") delete q.max_length;
      if (v !== "multiple") delete q.max_choices;
      if (v !== "number" && v !== "multiple") { delete q.min; delete q.max; }
      render();
    });
    var kids = [head,
      el("div", { "class": "sb-row" }, [field(t("survey_builder.type"), typeSel), text(q, "title", t("survey_builder.title"), { max: 500 })]),
      el("div", { "class": "sb-row" }, [text(q, "help", t("survey_builder.help"), { max: 4000 }), check(q, "required", t("survey_builder.required"))])];
    var limits = [];
    if (q.type === "number") { limits.push(number(q, "min", t("survey_builder.min"))); limits.push(number(q, "max", t("survey_builder.max"))); }
    if (q.type === "text") limits.push(number(q, "max_length", t("survey_builder.max_length"), true));
    if (q.type === "multiple") { limits.push(number(q, "min", t("survey_builder.min"), true)); limits.push(number(q, "max_choices", t("survey_builder.max_choices"), true)); }
    if (q.type === "rating") limits.push(field(t("survey_builder.scale"), select([["5", "1–5"], ["10", "1–10"]], String(q.scale || 5), function (v) { q.scale = Number(v); save(); })));
    if (limits.length) kids.push(el("div", { "class": "sb-row" }, limits));
    kids.push(mappingEditor(q));
    if (q.type === "single" || q.type === "multiple") kids.push(optionsEditor(q, qi));
    return el("div", { "class": "sb-question", "data-path": "questions[" + qi + "]" }, kids);
  }

  function render() {
    save();
    root.textContent = "";
    root.appendChild(settings());
    spec.questions.forEach(function (q, qi) { root.appendChild(question(q, qi)); });
    var add = el("button", { type: "button", "class": "button", text: "+ " + t("survey_builder.add_question") });
    add.addEventListener("click", function () {
      spec.questions.push({ id: nextID(spec.questions, "q"), type: "single", title: "", required: false, options: [{ id: "a", label: "" }, { id: "b", label: "" }] });
      render();
    });
    root.appendChild(add);
    markError();
  }

  // Outline the element the server's error names: the deepest data-path that prefixes it.
  function markError() {
    var f = root.getAttribute("data-error-field");
    if (!f) return;
    var best = null;
    root.querySelectorAll("[data-path]").forEach(function (e) {
      var p = e.getAttribute("data-path");
      if (f === p || f.indexOf(p + ".") === 0 || f.indexOf(p + "[") === 0) {
        if (!best || p.length > best.getAttribute("data-path").length) best = e;
      }
    });
    if (best) { best.classList.add("sb-field-error"); best.scrollIntoView({ block: "center" }); }
  }

  // Hand edits to the JSON win: re-read them when the textarea changes.
  area.addEventListener("change", function () {
    try { spec = JSON.parse(area.value); spec.questions = spec.questions || []; render(); } catch (e) { /* keep the text for the server to explain */ }
  });
  render();
})();
