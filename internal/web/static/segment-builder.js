// siyu segment builder: edits the condition tree kept as JSON in a form field and shows the
// live count (POST /api/v1/segments/count, debounced). Without this script the JSON field is
// edited by hand and the form's "count" button counts. Also: the tag rule editor's trigger
// switch and the back-fill progress poll. No framework, no build step.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") e.textContent = attrs[k];
      else if (k === "on") Object.keys(attrs.on).forEach(function (ev) { e.addEventListener(ev, attrs.on[ev]); });
      else if (attrs[k] !== undefined && attrs[k] !== null && attrs[k] !== false) e.setAttribute(k, attrs[k] === true ? "" : attrs[k]);
    });
    (kids || []).forEach(function (c) { if (c) e.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return e;
  }
  function select(options, value, onchange, cls) {
    var s = el("select", { "class": cls });
    var groups = {};
    options.forEach(function (o) {
      var opt = el("option", { value: o.v, text: o.l });
      if (String(o.v) === String(value)) opt.selected = true;
      if (o.group) {
        if (!groups[o.group]) { groups[o.group] = el("optgroup", { label: o.group }); s.appendChild(groups[o.group]); }
        groups[o.group].appendChild(opt);
      } else s.appendChild(opt);
    });
    s.addEventListener("change", function () { onchange(s.value); });
    return s;
  }
  function input(type, value, onchange, attrs) {
    var a = attrs || {};
    a.type = type;
    a.value = value === undefined || value === null ? "" : value;
    var i = el("input", a);
    i.addEventListener("input", function () { onchange(i.value); });
    return i;
  }
  var numRe = /^-?[0-9]+(\.[0-9]+)?$/;
  function scalar(t) {
    t = t.trim();
    if (numRe.test(t)) return parseFloat(t);
    if (t === "true") return true;
    if (t === "false") return false;
    if (t.length > 1 && t[0] === '"' && t[t.length - 1] === '"') return t.slice(1, -1);
    return t;
  }
  function splitList(t) { return t.split(/[,，、]/).map(function (x) { return x.trim(); }).filter(Boolean); }
  function text(v) {
    if (v === undefined || v === null) return "";
    if (Array.isArray(v)) return v.map(text).join(", ");
    return String(v);
  }
  var listOps = { "in": 1, not_in: 1, contains_any: 1, contains_all: 1 };
  var dayOps = { in_last_days: 1, more_than_days_ago: 1, in_next_days: 1, anniversary_in_next_days: 1 };

  function Builder(root, schema, field, countEl, form) {
    this.root = root; this.s = schema; this.field = field; this.countEl = countEl; this.form = form;
    this.L = schema.labels; this.last = null; this.timer = null; this.seq = 0;
    var tree = null;
    try { tree = field.value.trim() ? JSON.parse(field.value) : null; } catch (e) { tree = null; }
    if (!tree) tree = { op: "and", children: [] };
    if (!tree.op) tree = { op: "and", children: [tree] };
    this.tree = this.load(tree);
    var self = this;
    field.addEventListener("change", function () {
      try { self.tree = self.load(JSON.parse(field.value)); self.render(); } catch (e) { /* keep the builder */ }
    });
    this.render();
  }
  // load turns "not" of one "or" group back into a "none of" group.
  Builder.prototype.load = function (n) {
    if (!n.op) return n;
    if (n.op === "not" && n.children && n.children.length === 1 && n.children[0].op === "or") n = { op: "not", children: n.children[0].children };
    n.children = (n.children || []).map(this.load, this);
    return n;
  };
  Builder.prototype.complete = function (n) {
    if (n.op) {
      var kids = (n.children || []).map(this.complete, this).filter(Boolean);
      if (!kids.length) return null;
      if (n.op === "not") return { op: "not", children: [kids.length === 1 ? kids[0] : { op: "or", children: kids }] };
      return kids.length === 1 && n !== this.tree ? kids[0] : { op: n.op, children: kids };
    }
    return this.ok(n) ? n : null;
  };
  Builder.prototype.ok = function (n) {
    function val(cmp, v) {
      if (cmp === "is_set" || cmp === "is_not_set") return true;
      if (!cmp) return false;
      if (cmp === "between") return Array.isArray(v) && v.length === 2 && v[0] !== "" && v[1] !== "";
      if (listOps[cmp]) return Array.isArray(v) && v.length > 0;
      return v !== undefined && v !== null && v !== "" && !(typeof v === "number" && isNaN(v));
    }
    if (n.field) return val(n.cmp, n.value);
    if (n.tag) return n.tag.group ? true : (n.tag.ids || []).length > 0;
    if (n.event) {
      if (!n.event.name) return false;
      if ((n.event.where || []).some(function (w) { return !w.prop || !val(w.cmp, w.value); })) return false;
      return n.event.timing ? val(n.event.cmp, n.event.value) : true;
    }
    if (n.order) return val(n.order.cmp, n.order.value);
    if (n.habit) return (n.habit["in"] || []).length > 0;
    if (n.segment) return true;
    return false;
  };
  Builder.prototype.changed = function (redraw) {
    var t = this.complete(this.tree);
    this.field.value = t ? JSON.stringify(t) : "";
    if (redraw) this.render();
    var self = this;
    clearTimeout(this.timer);
    this.timer = setTimeout(function () { self.count(t); }, 350);
  };
  Builder.prototype.count = function (t) {
    var c = this.countEl;
    if (!c) return;
    var note = document.getElementById(c.id + "-note");
    var L = this.L, self = this;
    if (!t) { c.innerHTML = "<span class=\"muted\">—</span>"; if (note) note.textContent = L.empty; this.last = null; return; }
    var seq = ++this.seq;
    c.classList.add("busy");
    if (note) note.textContent = L.counting;
    var csrf = this.form.querySelector('input[name="csrf"]');
    fetch("/api/v1/segments/count", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf ? csrf.value : "" },
      body: JSON.stringify({ tree: t })
    }).then(function (r) { return r.json().then(function (b) { return { ok: r.ok, b: b }; }); }).then(function (res) {
      if (seq !== self.seq) return;
      c.classList.remove("busy");
      if (!res.ok) {
        c.innerHTML = "<span class=\"muted\">—</span>";
        if (note) note.textContent = L.error + (res.b.error && res.b.error.field ? " · " + res.b.error.field : "");
        return;
      }
      var n = res.b.count;
      c.textContent = "";
      c.appendChild(el("strong", { text: n.toLocaleString() }));
      c.appendChild(el("small", { text: L.count_label }));
      c.setAttribute("data-count", n);
      if (self.last !== null && self.last !== n) {
        var d = n - self.last;
        c.appendChild(el("div", { "class": "count-delta " + (d > 0 ? "up" : "down"), text: (d > 0 ? "+" : "−") + Math.abs(d).toLocaleString() }));
      }
      self.last = n;
      if (note) note.textContent = res.b.took_ms.toFixed(1) + " ms · " + res.b.source;
    })["catch"](function () { c.classList.remove("busy"); if (note) note.textContent = L.error; });
  };
  Builder.prototype.render = function () {
    this.root.textContent = "";
    this.root.appendChild(this.group(this.tree, null));
    var t = this.complete(this.tree);
    this.field.value = t ? JSON.stringify(t) : "";
    if (this.last === null && t) this.count(t);
  };
  Builder.prototype.group = function (g, parent) {
    var self = this, L = this.L;
    var box = el("div", { "class": "bgroup op-" + g.op });
    var head = el("div", { "class": "bgroup-head" }, [
      select([{ v: "and", l: L.all }, { v: "or", l: L.any }, { v: "not", l: L.none }], g.op, function (v) { g.op = v; self.changed(true); })
    ]);
    if (parent) head.appendChild(el("button", { type: "button", "class": "button small ghost bremove", text: L.remove, on: { click: function () { parent.children.splice(parent.children.indexOf(g), 1); self.changed(true); } } }));
    box.appendChild(head);
    g.children.forEach(function (c, i) {
      if (i > 0) box.appendChild(el("div", { "class": "bjoin", text: g.op === "or" ? L.or : (g.op === "not" ? L.or : L.and) }));
      box.appendChild(c.op ? self.group(c, g) : self.leaf(c, g));
    });
    box.appendChild(el("div", { "class": "bgroup-foot" }, [
      el("button", { type: "button", "class": "button small", "data-add": "condition", text: "+ " + L.add_condition, on: { click: function () { g.children.push({ field: "region", cmp: "eq", value: "" }); self.changed(true); } } }),
      el("button", { type: "button", "class": "button small ghost", "data-add": "group", text: "+ " + L.add_group, on: { click: function () { g.children.push({ op: g.op === "and" ? "or" : "and", children: [{ field: "region", cmp: "eq", value: "" }] }); self.changed(true); } } })
    ]));
    return box;
  };
  Builder.prototype.kindOf = function (n) {
    return n.field ? "field" : n.tag ? "tag" : n.event ? "event" : n.order ? "order" : n.habit ? "habit" : "segment";
  };
  var defaults = {
    field: function () { return { field: "region", cmp: "eq", value: "" }; },
    tag: function () { return { tag: { match: "any", ids: [] } }; },
    event: function () { return { event: { name: "" } }; },
    order: function () { return { order: { metric: "total", cmp: "gte", value: "" } }; },
    habit: function () { return { habit: { kind: "active_hour", "in": [] } }; },
    segment: function (s) { return { segment: s.segments.length ? parseInt(s.segments[0].v, 10) : 0 }; }
  };
  Builder.prototype.leaf = function (n, parent) {
    var self = this, L = this.L, s = this.s;
    var box = el("div", { "class": "bcond" + (this.ok(n) ? "" : " incomplete") });
    var kinds = ["field", "tag", "event", "order", "habit", "segment"].filter(function (k) { return k !== "segment" || s.segments.length; });
    box.appendChild(select(kinds.map(function (k) { return { v: k, l: L["kind." + k] }; }), this.kindOf(n), function (k) {
      var fresh = defaults[k](s);
      Object.keys(n).forEach(function (key) { delete n[key]; });
      Object.keys(fresh).forEach(function (key) { n[key] = fresh[key]; });
      self.changed(true);
    }, "bkind"));
    var upd = function (redraw) { box.classList.toggle("incomplete", !self.ok(n)); self.changed(redraw); };
    this["edit_" + this.kindOf(n)](n, box, upd);
    box.appendChild(el("button", { type: "button", "class": "button small ghost bremove", title: L.remove, "aria-label": L.remove, text: "×", on: { click: function () { parent.children.splice(parent.children.indexOf(n), 1); self.changed(true); } } }));
    return box;
  };
  // cmpValue draws the operator and value boxes for a value of type t held in obj.cmp/obj.value.
  Builder.prototype.cmpValue = function (obj, t, box, upd) {
    var self = this, L = this.L;
    var ops = this.s.ops[t] || [];
    if (!ops.some(function (o) { return o.v === obj.cmp; })) obj.cmp = ops[0].v;
    box.appendChild(select(ops, obj.cmp, function (v) {
      var wasList = !!listOps[obj.cmp], was = obj.cmp;
      obj.cmp = v;
      if (v === "is_set" || v === "is_not_set") delete obj.value;
      else if (!!listOps[v] !== wasList || v === "between" || was === "between" || !!dayOps[v] !== !!dayOps[was]) obj.value = listOps[v] || v === "between" ? [] : "";
      upd(true);
    }));
    var cmp = obj.cmp;
    if (cmp === "is_set" || cmp === "is_not_set") return;
    var num = t === "number" || t === "staff";
    var conv = function (x) { return num ? (x === "" ? "" : parseFloat(x)) : x; };
    if (dayOps[cmp]) {
      box.appendChild(input("number", obj.value, function (v) { obj.value = v === "" ? "" : parseInt(v, 10); upd(); }, { "class": "narrow", min: 1, max: 3660 }));
      box.appendChild(el("span", { "class": "muted", text: L.days }));
      return;
    }
    if (t === "bool") {
      if (typeof obj.value !== "boolean") obj.value = true;
      box.appendChild(select([{ v: "true", l: "✓" }, { v: "false", l: "✗" }], String(obj.value), function (v) { obj.value = v === "true"; upd(); }));
      return;
    }
    if (t === "staff" && !listOps[cmp]) {
      if (obj.value === "" || obj.value === undefined) obj.value = this.s.staff.length ? parseInt(this.s.staff[0].v, 10) : "";
      box.appendChild(select(this.s.staff, obj.value, function (v) { obj.value = parseInt(v, 10); upd(); }));
      return;
    }
    var itype = t === "date" || t === "datetime" ? "date" : (num ? "number" : "text");
    if (cmp === "between") {
      var v = Array.isArray(obj.value) ? obj.value : ["", ""];
      obj.value = v;
      box.appendChild(input(itype, v[0], function (x) { v[0] = conv(x); upd(); }));
      box.appendChild(el("span", { "class": "muted", text: "~" }));
      box.appendChild(input(itype, v[1], function (x) { v[1] = conv(x); upd(); }));
      return;
    }
    if (listOps[cmp]) {
      box.appendChild(input("text", text(obj.value), function (x) { obj.value = splitList(x).map(function (p) { return num ? parseFloat(p) : p; }); upd(); }, { "class": "wide", placeholder: L.values_hint, title: L.values_hint }));
      return;
    }
    box.appendChild(input(itype, obj.value, function (x) { obj.value = conv(x); upd(); }, { "class": itype === "text" ? "wide" : null, placeholder: L.value }));
  };
  Builder.prototype.edit_field = function (n, box, upd) {
    var s = this.s, self = this;
    var f = s.fields.filter(function (x) { return x.v === n.field; })[0] || s.fields[0];
    box.appendChild(select(s.fields, n.field, function (v) { n.field = v; delete n.value; n.cmp = ""; upd(true); }));
    this.cmpValue(n, f.type, box, upd);
    void self;
  };
  Builder.prototype.edit_tag = function (n, box, upd) {
    var L = this.L, s = this.s, c = n.tag;
    var byGroup = !!c.group;
    var matches = [{ v: "any", l: L["match.any"] }, { v: "all", l: L["match.all"] }, { v: "none", l: L["match.none"] }];
    if (byGroup) matches = matches.filter(function (m) { return m.v !== "all"; });
    box.appendChild(select(matches, c.match, function (v) { c.match = v; upd(); }));
    box.appendChild(select([{ v: "tags", l: L.pick_tags }, { v: "group", l: L.tags_of_group }], byGroup ? "group" : "tags", function (v) {
      if (v === "group") { delete c.ids; c.group = s.groups.length ? parseInt(s.groups[0].v, 10) : 0; if (c.match === "all") c.match = "any"; }
      else { delete c.group; c.ids = []; }
      upd(true);
    }));
    if (byGroup) {
      box.appendChild(select(s.groups, c.group, function (v) { c.group = parseInt(v, 10); upd(); }));
      return;
    }
    var multi = el("div", { "class": "bmulti bsub-row" });
    s.tags.forEach(function (t) {
      var id = parseInt(t.v, 10);
      var cb = el("input", { type: "checkbox", value: t.v });
      cb.checked = (c.ids || []).indexOf(id) >= 0;
      cb.addEventListener("change", function () {
        c.ids = (c.ids || []).filter(function (x) { return x !== id; });
        if (cb.checked) c.ids.push(id);
        upd();
      });
      multi.appendChild(el("label", { title: t.group }, [cb, t.l]));
    });
    box.appendChild(el("div", { "class": "bsub" }, [multi]));
  };
  Builder.prototype.window = function (obj, box, upd) {
    var L = this.L;
    var has = obj.window && obj.window.last_days;
    box.appendChild(select([{ v: "all", l: L.all_time }, { v: "last", l: L.last_days }], has ? "last" : "all", function (v) {
      if (v === "last") obj.window = { last_days: 30 }; else delete obj.window;
      upd(true);
    }));
    if (has) {
      box.appendChild(input("number", obj.window.last_days, function (v) { obj.window.last_days = parseInt(v, 10) || 0; upd(); }, { "class": "narrow", min: 1, max: 3660 }));
      box.appendChild(el("span", { "class": "muted", text: L.days }));
    }
  };
  Builder.prototype.edit_event = function (n, box, upd) {
    var L = this.L, s = this.s, e = n.event, self = this;
    box.appendChild(input("text", e.name, function (v) { e.name = v.trim(); upd(); }, { list: "event-names", placeholder: L.event_name, "class": "wide", "aria-label": L.event_name }));
    var timing = e.timing || "count";
    box.appendChild(select([{ v: "count", l: L["timing.count"] }, { v: "first", l: L["timing.first"] }, { v: "last", l: L["timing.last"] }], timing, function (v) {
      delete e.count; delete e.window; delete e.cmp; delete e.value; delete e.timing;
      if (v !== "count") e.timing = v;
      upd(true);
    }));
    if (timing === "count") {
      var cnt = e.count || { cmp: "gte", value: 1 };
      var ops = ["gte", "gt", "eq", "ne", "lt", "lte"].map(function (o) { return { v: o, l: s.ops.number.filter(function (x) { return x.v === o; })[0].l }; });
      box.appendChild(select(ops, cnt.cmp, function (v) { cnt.cmp = v; e.count = cnt; upd(); }));
      box.appendChild(input("number", cnt.value, function (v) { cnt.value = parseInt(v, 10) || 0; e.count = cnt; upd(); }, { "class": "narrow", min: 0 }));
      box.appendChild(el("span", { "class": "muted", text: L.times }));
      this.window(e, box, upd);
    } else {
      this.cmpValue(e, "datetime", box, upd);
    }
    var sub = el("div", { "class": "bsub" });
    (e.where || []).forEach(function (w, i) {
      var row = el("div", { "class": "bsub-row" });
      row.appendChild(input("text", w.prop, function (v) { w.prop = v.trim(); upd(); }, { placeholder: L.prop, "aria-label": L.prop }));
      row.appendChild(select(s.propOps, w.cmp, function (v) { w.cmp = v; if (v === "is_set" || v === "is_not_set") delete w.value; upd(true); }));
      if (w.cmp !== "is_set" && w.cmp !== "is_not_set") {
        row.appendChild(input("text", text(w.value), function (v) {
          w.value = w.cmp === "in" || w.cmp === "not_in" ? splitList(v).map(scalar) : (w.cmp === "contains" ? v : scalar(v));
          upd();
        }, { placeholder: L.value, title: L.values_hint }));
      }
      row.appendChild(el("button", { type: "button", "class": "button small ghost", text: "×", title: L.remove, on: { click: function () { e.where.splice(i, 1); if (!e.where.length) delete e.where; upd(true); } } }));
      sub.appendChild(row);
    });
    sub.appendChild(el("div", {}, [el("button", { type: "button", "class": "button small ghost", text: "+ " + L.add_where, on: { click: function () { (e.where = e.where || []).push({ prop: "", cmp: "eq", value: "" }); upd(true); } } })]));
    box.appendChild(sub);
    void self;
  };
  Builder.prototype.edit_order = function (n, box, upd) {
    var o = n.order, s = this.s;
    var m = s.metrics.filter(function (x) { return x.v === o.metric; })[0] || s.metrics[0];
    box.appendChild(select(s.metrics, o.metric, function (v) { o.metric = v; delete o.window; delete o.value; o.cmp = ""; upd(true); }));
    if (m.type === "number") this.window(o, box, upd);
    this.cmpValue(o, m.type, box, upd);
  };
  Builder.prototype.edit_habit = function (n, box, upd) {
    var h = n.habit, s = this.s, L = this.L;
    var k = s.habits.filter(function (x) { return x.v === h.kind; })[0] || s.habits[0];
    box.appendChild(select(s.habits, h.kind, function (v) { h.kind = v; h["in"] = []; upd(true); }));
    box.appendChild(el("span", { "class": "muted", text: L.habit_in }));
    var r = k.type.split("-").map(Number), multi = el("div", { "class": "bmulti" });
    for (var i = r[0]; i <= r[1]; i++) {
      (function (x) {
        var cb = el("input", { type: "checkbox" });
        cb.checked = (h["in"] || []).indexOf(x) >= 0;
        cb.addEventListener("change", function () {
          h["in"] = (h["in"] || []).filter(function (y) { return y !== x; });
          if (cb.checked) h["in"].push(x);
          h["in"].sort(function (a, b) { return a - b; });
          upd();
        });
        multi.appendChild(el("label", {}, [cb, String(x)]));
      })(i);
    }
    box.appendChild(el("div", { "class": "bsub" }, [multi]));
  };
  Builder.prototype.edit_segment = function (n, box, upd) {
    box.appendChild(select(this.s.segments, n.segment, function (v) { n.segment = parseInt(v, 10); upd(); }));
  };

  document.querySelectorAll(".builder[data-builder]").forEach(function (root) {
    var schema = JSON.parse(root.getAttribute("data-builder"));
    ["fields", "propOps", "tags", "groups", "segments", "staff", "events", "metrics", "habits"].forEach(function (k) { schema[k] = schema[k] || []; });
    var field = document.getElementById(root.getAttribute("data-target"));
    var form = root.closest("form");
    if (!field || !form) return;
    var details = field.closest("details");
    if (details) details.open = false;
    var list = document.getElementById("event-names");
    if (list && !list.children.length) schema.events.forEach(function (n) { list.appendChild(el("option", { value: n })); });
    root.builder = new Builder(root, schema, field, document.getElementById(root.getAttribute("data-count")), form);
  });

  // The rule editor shows the part of the trigger that is chosen.
  document.querySelectorAll(".rule-form").forEach(function (form) {
    var sync = function () {
      var r = form.querySelector('input[name="kind"]:checked');
      form.setAttribute("data-kind", r ? r.value : "event");
    };
    form.addEventListener("change", sync);
    sync();
  });

  // A running back-fill: poll its status until it ends.
  document.querySelectorAll(".backfill[data-running=true]").forEach(function (box) {
    var url = box.getAttribute("data-job");
    var set = function (name, v) { var e = box.querySelector('[data-field="' + name + '"]'); if (e) e.textContent = v; };
    var tick = function () {
      fetch(url, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (st) {
        set("state", box.getAttribute("data-l-" + st.state) || st.state);
        set("done", st.done.toLocaleString());
        set("total", st.total ? st.total.toLocaleString() : "…");
        set("added", st.added); set("removed", st.removed);
        var bar = box.querySelector('[data-field="bar"]');
        if (bar && st.total) { bar.max = st.total; bar.value = st.done; }
        if (st.state === "running") setTimeout(tick, 1000);
        else { var a = box.querySelector('[data-field="reload"]'); if (a) a.hidden = true; }
      })["catch"](function () { setTimeout(tick, 3000); });
    };
    setTimeout(tick, 500);
  });
})();
