/* dictlab feature browser: index.html (every latent in a table) and latent.html#<id> (one latent).
   The data are script files in data/ that call dictlabData.meta / .index / .chunk: pages opened from file://
   may not fetch, but they may add <script> tags. */
(function () {
  "use strict";

  const store = { meta: null, index: null, chunks: {} };
  window.dictlabData = {
    meta(d) { store.meta = d; },
    index(d) { store.index = d; },
    chunk(k, d) { store.chunks[k] = d; },
  };

  // ---------------------------------------------------------------- helpers

  const loading = {};

  /** Load a data file once; resolves when `ready()` says its data arrived, rejects with a readable message. */
  function load(src, ready) {
    if (!loading[src]) {
      loading[src] = new Promise((resolve, reject) => {
        const script = document.createElement("script");
        script.src = src;
        script.onload = () => {
          if (ready()) resolve();
          else { delete loading[src]; reject(new Error(src + " is damaged: it loaded but held no data.")); }
        };
        script.onerror = () => {
          delete loading[src];
          script.remove();
          reject(new Error(src + " is missing (or could not be read)."));
        };
        document.head.appendChild(script);
      });
    }
    return loading[src];
  }

  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  }

  /** A number in 3 significant digits, exponent form outside [1e-3, 1e5). */
  function fmt(v) {
    if (v === null || v === undefined) return "–";
    if (typeof v !== "number") return String(v);
    if (!isFinite(v)) return String(v);
    if (v === 0) return "0";
    const a = Math.abs(v);
    if (a >= 1e5 || a < 1e-3) return v.toExponential(2).replace(/\.?0+e/, "e");
    return String(Number(v.toPrecision(3)));
  }

  function pct(v) {
    return v === null || v === undefined ? "–" : fmt(100 * v) + "%";
  }

  /** Token text with line breaks, tabs and control characters made visible. */
  function shown(s) {
    return s
      .replace(/\r\n|[\r\n\u0085\u2028\u2029]/g, "↵")
      .replace(/\t/g, "⇥")
      .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, (c) => "\\x" + c.charCodeAt(0).toString(16).padStart(2, "0"));
  }

  /** Decoded text of token `ref` (its position in a data file's token table), or ⟨id⟩ if unknown. */
  function tokenText(table, ref) {
    if (ref === null || ref === undefined) return null;
    const s = table.text[ref];
    return s === null || s === undefined ? "⟨" + table.ids[ref] + "⟩" : s;
  }

  /** A token on its own (tables): spaces as faint dots, the empty string as ∅. */
  function tokenLabel(s) {
    if (s === null) return '<span class="muted">–</span>';
    if (s === "") return '<span class="tokname"><span class="ws">∅</span></span>';
    return '<span class="tokname">' + esc(shown(s)).replace(/ /g, '<span class="ws">·</span>') + "</span>";
  }

  function flagBadges(names) {
    return names.map((f) => '<span class="badge flag f-' + esc(f.replace(/[^a-z0-9-]/gi, "")) + '">' + esc(f) + "</span>").join(" ");
  }

  function latentLink(id) {
    return '<a class="latent" href="latent.html#' + id + '">#' + id + "</a>";
  }

  function showError(error) {
    const main = document.getElementById("main");
    const message = error && error.message ? error.message : String(error);
    main.innerHTML =
      '<div id="error" class="error"><strong>Cannot show this page.</strong> ' + esc(message) +
      '<br><span class="hint">The browser folder must be opened whole: index.html, latent.html, app.js, style.css ' +
      "and the data/ folder next to them. Writing the browser again restores missing files.</span></div>";
  }

  // ---------------------------------------------------------------- index.html

  const COLUMNS = [
    { key: "latent", label: "latent", num: true, title: "Latent id" },
    { key: "density", label: "density", num: true, title: "Share of rows where the latent fires" },
    { key: "count", label: "count", num: true, title: "Rows where the latent fires" },
    { key: "max", label: "max", num: true, title: "Largest activation" },
    { key: "mean", label: "mean", num: true, title: "Mean of the nonzero activations" },
    { key: "token", label: "top token", num: false, title: "Most common current token among the top contexts" },
    { key: "share", label: "share", num: true, title: "Share of the top contexts with that token" },
    { key: "label", label: "best label", num: false, title: "Label the latent detects best" },
    { key: "f1", label: "F1", num: true, title: "F1 of the latent as a detector of that label" },
    { key: "flags", label: "flags", num: false, title: "What the diagnosis found" },
  ];
  const PAGE_SIZES = [50, 100, 250, 1000];
  const DEFAULT_STATE = { sort: "latent", desc: false, q: "", flag: "", dmin: null, dmax: null, hideDead: false, page: 1, per: 100 };

  function indexPage() {
    Promise.all([load("data/meta.js", () => store.meta), load("data/index.js", () => store.index)])
      .then(() => buildIndex(store.meta, store.index))
      .catch(showError);
  }

  function buildIndex(meta, ix) {
    const n = ix.latent.length;
    const tokens = new Array(n), labels = new Array(n), flags = new Array(n), search = new Array(n);
    for (let i = 0; i < n; i++) {
      tokens[i] = tokenText(ix.tokens, ix.token[i]);
      labels[i] = ix.label[i] === null ? null : ix.labelNames[ix.label[i]];
      flags[i] = ix.flags[i].map((f) => ix.flagNames[f]);
      search[i] = [tokens[i] || "", labels[i] || "", flags[i].join(" "), ix.dead[i] ? "dead" : ""].join("\u0000").toLowerCase();
    }
    const keys = {
      latent: ix.latent, density: ix.density, count: ix.count, max: ix.max, mean: ix.mean,
      token: tokens, share: ix.share, label: labels, f1: ix.f1, flags: flags.map((f) => f.join(" ") || null),
    };

    const main = document.getElementById("main");
    const flagOptions = ix.flagNames
      .map((f, i) => '<option value="' + esc(f) + '">' + esc(f) + " (" + ix.flagCounts[i] + ")</option>")
      .join("");
    main.innerHTML =
      '<h1>Latents <span id="count" class="count"></span></h1>' +
      '<form id="filters" class="filters" onsubmit="return false">' +
      '<label>search <input id="q" type="search" placeholder="top token, label or flag" size="24"></label>' +
      '<label>density ≥ <input id="dmin" type="number" step="any" min="0" max="1" placeholder="0"></label>' +
      '<label>≤ <input id="dmax" type="number" step="any" min="0" max="1" placeholder="1"></label>' +
      '<label>flag <select id="flag"><option value="">any</option><option value="*">has a flag</option>' +
      '<option value="-">no flag</option><option value="dead">dead (' + meta.dead + ")</option>" + flagOptions + "</select></label>" +
      '<label><input id="hidedead" type="checkbox"> hide dead</label>' +
      '<label>rows <select id="per"></select></label>' +
      '<button id="reset" type="button">reset</button>' +
      "</form>" +
      '<nav class="pager" id="pager-top"></nav>' +
      '<div class="scroll"><table id="latents" class="latents"><thead><tr>' +
      COLUMNS.map((c) => '<th data-key="' + c.key + '" class="sortable' + (c.num ? " num" : "") + '" title="' + esc(c.title) +
        ' (click to sort)">' + esc(c.label) + '<span class="arrow"></span></th>').join("") +
      '</tr></thead><tbody id="rows"></tbody></table></div>' +
      '<nav class="pager" id="pager-bottom"></nav>' +
      summaryHtml(meta);

    const $ = (id) => document.getElementById(id);
    let state = readState();

    function readState() {
      const p = new URLSearchParams(location.hash.replace(/^#/, ""));
      const s = Object.assign({}, DEFAULT_STATE);
      let sort = p.get("sort") || "latent";
      if (sort[0] === "-") { s.desc = true; sort = sort.slice(1); }
      if (keys[sort] === undefined) { sort = "latent"; s.desc = false; }
      s.sort = sort;
      s.q = p.get("q") || "";
      s.flag = p.get("flag") || "";
      const number = (v) => (v === null || v === "" || isNaN(Number(v)) ? null : Number(v));
      s.dmin = number(p.get("dmin"));
      s.dmax = number(p.get("dmax"));
      s.hideDead = ["1", "true", "yes"].includes(p.get("hidedead") || "");
      const per = parseInt(p.get("per") || "", 10);
      s.per = per > 0 ? Math.min(per, 100000) : DEFAULT_STATE.per;
      const page = parseInt(p.get("page") || "", 10);
      s.page = page > 0 ? page : 1;
      return s;
    }

    function writeState() {
      const p = new URLSearchParams();
      if (state.sort !== "latent" || state.desc) p.set("sort", (state.desc ? "-" : "") + state.sort);
      if (state.q) p.set("q", state.q);
      if (state.flag) p.set("flag", state.flag);
      if (state.dmin !== null) p.set("dmin", String(state.dmin));
      if (state.dmax !== null) p.set("dmax", String(state.dmax));
      if (state.hideDead) p.set("hidedead", "1");
      if (state.page !== 1) p.set("page", String(state.page));
      if (state.per !== DEFAULT_STATE.per) p.set("per", String(state.per));
      const hash = p.toString();
      if (hash === location.hash.replace(/^#/, "")) return;
      try {
        history.replaceState(null, "", hash ? "#" + hash : location.pathname + location.search);
      } catch (e) {
        location.hash = hash;
      }
    }

    function matches(i) {
      if (state.hideDead && ix.dead[i]) return false;
      const d = ix.density[i];
      if (state.dmin !== null && !(d >= state.dmin)) return false;
      if (state.dmax !== null && !(d <= state.dmax)) return false;
      if (state.flag === "*") { if (!flags[i].length) return false; }
      else if (state.flag === "-") { if (flags[i].length) return false; }
      else if (state.flag === "dead") { if (!ix.dead[i] && !flags[i].includes("dead")) return false; }
      else if (state.flag && !flags[i].includes(state.flag)) return false;
      return !state.q || search[i].includes(state.q.toLowerCase());
    }

    function selected() {
      const rows = [];
      for (let i = 0; i < n; i++) if (matches(i)) rows.push(i);
      const key = keys[state.sort], dir = state.desc ? -1 : 1, id = ix.latent;
      rows.sort((a, b) => {
        const x = key[a], y = key[b];
        const xn = x === null || x === undefined, yn = y === null || y === undefined;
        if (xn || yn) return xn && yn ? id[a] - id[b] : xn ? 1 : -1; // missing values last either way
        if (x < y) return -dir;
        if (x > y) return dir;
        return id[a] - id[b];
      });
      return rows;
    }

    function rowHtml(i) {
      const id = ix.latent[i], dead = ix.dead[i];
      const bar = ix.density[i] > 0 ? Math.max(2, Math.min(100, 100 * (1 + Math.log10(ix.density[i]) / 6))) : 0;
      return (
        '<tr data-latent="' + id + '"' + (dead ? ' class="dead"' : "") + ">" +
        '<td class="num"><a href="latent.html#' + id + '">' + id + "</a>" + (dead ? ' <span class="badge dead">dead</span>' : "") + "</td>" +
        '<td class="num density"><span class="bar" style="width:' + bar.toFixed(1) + '%"></span><span class="v">' + fmt(ix.density[i]) + "</span></td>" +
        '<td class="num">' + ix.count[i].toLocaleString("en") + "</td>" +
        '<td class="num">' + fmt(ix.max[i]) + "</td>" +
        '<td class="num">' + fmt(ix.mean[i]) + "</td>" +
        "<td>" + tokenLabel(tokens[i]) + "</td>" +
        '<td class="num">' + (tokens[i] === null ? "–" : pct(ix.share[i])) + "</td>" +
        "<td>" + (labels[i] === null ? '<span class="muted">–</span>' : esc(labels[i])) + "</td>" +
        '<td class="num">' + fmt(ix.f1[i]) + "</td>" +
        "<td>" + flagBadges(flags[i]) + "</td>" +
        "</tr>"
      );
    }

    function pagerHtml(page, pages, first, last, total) {
      const button = (to, text, disabled) =>
        '<button type="button" data-page="' + to + '"' + (disabled ? " disabled" : "") + ">" + text + "</button>";
      return (
        button(1, "« first", page <= 1) + button(page - 1, "‹ prev", page <= 1) +
        '<span class="pageinfo">page ' + page + " of " + pages + " · rows " + (total ? first + 1 : 0) + "–" + last + " of " + total + "</span>" +
        button(page + 1, "next ›", page >= pages) + button(pages, "last »", page >= pages)
      );
    }

    function render() {
      const rows = selected();
      const pages = Math.max(1, Math.ceil(rows.length / state.per));
      state.page = Math.min(state.page, pages);
      const first = (state.page - 1) * state.per, last = Math.min(rows.length, first + state.per);
      $("rows").innerHTML = rows.length
        ? rows.slice(first, last).map(rowHtml).join("")
        : '<tr class="empty"><td colspan="' + COLUMNS.length + '">No latent matches these filters.</td></tr>';
      const total = n.toLocaleString("en");
      $("count").textContent = rows.length === n
        ? total + " latents · " + meta.dead.toLocaleString("en") + " dead"
        : rows.length.toLocaleString("en") + " of " + total + " latents";
      const pager = pagerHtml(state.page, pages, first, last, rows.length);
      $("pager-top").innerHTML = pager;
      $("pager-bottom").innerHTML = pager;
      for (const th of document.querySelectorAll("#latents th")) {
        const on = th.dataset.key === state.sort;
        th.classList.toggle("sorted", on);
        th.querySelector(".arrow").textContent = on ? (state.desc ? " ▼" : " ▲") : "";
        th.setAttribute("aria-sort", on ? (state.desc ? "descending" : "ascending") : "none");
      }
      syncControls();
      writeState();
    }

    function syncControls() {
      if ($("q").value !== state.q) $("q").value = state.q;
      $("dmin").value = state.dmin === null ? "" : state.dmin;
      $("dmax").value = state.dmax === null ? "" : state.dmax;
      const flag = $("flag");
      if (state.flag && ![...flag.options].some((o) => o.value === state.flag)) {
        flag.insertAdjacentHTML("beforeend", '<option value="' + esc(state.flag) + '">' + esc(state.flag) + " (0)</option>");
      }
      flag.value = state.flag;
      $("hidedead").checked = state.hideDead;
      const sizes = PAGE_SIZES.includes(state.per) ? PAGE_SIZES : PAGE_SIZES.concat([state.per]).sort((a, b) => a - b);
      $("per").innerHTML = sizes.map((s) => '<option value="' + s + '">' + s + "</option>").join("");
      $("per").value = String(state.per);
    }

    function update(change) {
      Object.assign(state, change);
      render();
    }

    $("q").addEventListener("input", () => update({ q: $("q").value, page: 1 }));
    const density = (el) => (el.value === "" || isNaN(Number(el.value)) ? null : Number(el.value));
    $("dmin").addEventListener("input", () => update({ dmin: density($("dmin")), page: 1 }));
    $("dmax").addEventListener("input", () => update({ dmax: density($("dmax")), page: 1 }));
    $("flag").addEventListener("change", () => update({ flag: $("flag").value, page: 1 }));
    $("hidedead").addEventListener("change", () => update({ hideDead: $("hidedead").checked, page: 1 }));
    $("per").addEventListener("change", () => update({ per: Number($("per").value), page: 1 }));
    $("reset").addEventListener("click", () => update(Object.assign({}, DEFAULT_STATE)));
    for (const id of ["pager-top", "pager-bottom"]) {
      $(id).addEventListener("click", (event) => {
        const button = event.target.closest("button[data-page]");
        if (button && !button.disabled) update({ page: Number(button.dataset.page) });
      });
    }
    document.querySelector("#latents thead").addEventListener("click", (event) => {
      const th = event.target.closest("th[data-key]");
      if (!th) return;
      const key = th.dataset.key, numeric = COLUMNS.find((c) => c.key === key).num;
      const desc = key === state.sort ? !state.desc : numeric && key !== "latent";
      update({ sort: key, desc: desc, page: 1 });
    });
    window.addEventListener("hashchange", () => {
      state = readState();
      render();
    });
    render();
  }

  function summaryHtml(meta) {
    const s = meta.source;
    const rows = [
      ["model", s.model], ["module", s.module], ["run", s.run], ["store", s.store],
      ["rows", s.rows.toLocaleString("en") + " (from row " + s.first_row.toLocaleString("en") + ")"],
      ["dictionary", s.d_sae + " latents × " + s.d_in + " inputs, " + s.activation],
      ["live / dead", meta.live + " / " + meta.dead], ["context window", "±" + s.window + " tokens"],
    ];
    if (meta.diagnosis) {
      for (const [k, v] of Object.entries(meta.diagnosis)) {
        rows.push(["diagnosis: " + k, typeof v === "object" && v !== null ? JSON.stringify(v) : fmt(v)]);
      }
    }
    return '<details class="summary"><summary>About this report</summary><table class="kv">' +
      rows.map(([k, v]) => "<tr><th>" + esc(k) + "</th><td>" + esc(v) + "</td></tr>").join("") + "</table></details>";
  }

  // ---------------------------------------------------------------- latent.html

  function latentPage() {
    load("data/meta.js", () => store.meta)
      .then(() => {
        window.addEventListener("hashchange", showLatent);
        document.addEventListener("keydown", (event) => {
          if (event.target.closest("input, select, textarea") || event.altKey || event.ctrlKey || event.metaKey) return;
          const selector = { ArrowLeft: "a.prev", ArrowRight: "a.next" }[event.key];
          const link = selector && document.querySelector(selector);
          if (link) location.hash = link.getAttribute("href").split("#")[1];
        });
        showLatent();
      })
      .catch(showError);
  }

  function requestedId() {
    const h = decodeURIComponent(location.hash.replace(/^#/, "")).replace(/^latent=/, "").trim();
    return /^\d+$/.test(h) ? Number(h) : null;
  }

  /** Index of the chunk whose [first, last] range holds `id`, or -1. */
  function chunkOf(id) {
    const chunks = store.meta.chunks;
    let lo = 0, hi = chunks.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (id < chunks[mid][0]) hi = mid - 1;
      else if (id > chunks[mid][1]) lo = mid + 1;
      else return mid;
    }
    return -1;
  }

  function chunkFile(k) {
    return "data/latents-" + String(k).padStart(5, "0") + ".js";
  }

  function showLatent() {
    const main = document.getElementById("main");
    const id = requestedId();
    const chunks = store.meta.chunks;
    const range = chunks.length ? " Latents run from " + chunks[0][0] + " to " + chunks[chunks.length - 1][1] + "." : "";
    if (id === null) {
      main.innerHTML = '<p class="status">Name a latent after # in the address, e.g. <a href="latent.html#' +
        (chunks.length ? chunks[0][0] : 0) + '">latent.html#' + (chunks.length ? chunks[0][0] : 0) + "</a>." + esc(range) + "</p>";
      return;
    }
    const k = chunkOf(id);
    if (k < 0) {
      main.innerHTML = '<p class="status" id="notfound">There is no latent ' + id + " in this report." + esc(range) + "</p>";
      return;
    }
    const src = chunkFile(k);
    if (!store.chunks[k]) main.innerHTML = '<p class="status">Loading ' + esc(src) + "…</p>";
    load(src, () => store.chunks[k])
      .then(() => {
        if (requestedId() !== id) return; // the hash moved on while the file loaded
        const chunk = store.chunks[k];
        const at = chunk.latents.findIndex((l) => l.id === id);
        if (at < 0) {
          main.innerHTML = '<p class="status" id="notfound">There is no latent ' + id + " in this report.</p>";
          return;
        }
        const prev = at > 0 ? chunk.latents[at - 1].id : k > 0 ? chunks[k - 1][1] : null;
        const next = at < chunk.latents.length - 1 ? chunk.latents[at + 1].id : k < chunks.length - 1 ? chunks[k + 1][0] : null;
        main.innerHTML = latentHtml(chunk.latents[at], chunk.tokens, prev, next);
        document.title = "latent " + id + " · " + store.meta.source.model + " " + store.meta.source.module;
        window.scrollTo(0, 0);
      })
      .catch(showError);
  }

  function latentHtml(l, vocab, prev, next) {
    const d = l.diagnosis;
    const flags = (d && d.flags) || [];
    const nav =
      '<nav class="latentnav"><a href="index.html">← all latents</a>' +
      (prev === null ? '<span class="muted">‹ prev</span>' : '<a class="prev" href="latent.html#' + prev + '">‹ #' + prev + "</a>") +
      (next === null ? '<span class="muted">next ›</span>' : '<a class="next" href="latent.html#' + next + '">#' + next + " ›</a>") +
      '<form class="goto" onsubmit="location.hash=this.elements.id.value;return false">' +
      '<input name="id" type="number" min="0" placeholder="latent id" aria-label="latent id"><button>go</button></form></nav>';
    const top = tokenText(vocab, l.token);
    const stats = [
      ["density", fmt(l.density) + " (" + pct(l.density) + ")"],
      ["count", l.count.toLocaleString("en")],
      ["mean", fmt(l.mean)],
      ["max", fmt(l.max)],
      ["dead", l.dead ? "yes" : "no"],
      ["top token", top === null ? "–" : tokenLabel(top) + " " + pct(l.share), true],
      ["best label", l.bestLabel === null ? "–" : esc(l.bestLabel) + (l.labelShare === null ? "" : " " + pct(l.labelShare) + " of top"), true],
    ];
    const statsHtml = '<dl class="stats" id="stats">' +
      stats.map(([k, v, raw]) => "<div><dt>" + esc(k) + "</dt><dd>" + (raw ? v : esc(v)) + "</dd></div>").join("") + "</dl>";
    const head =
      nav + '<h1>Latent ' + l.id + (l.dead ? ' <span class="badge dead">dead</span>' : "") + " " + flagBadges(flags) + "</h1>" + statsHtml;

    const scale = l.max > 0 ? l.max : maxAbs(l);
    const effScale = maxEffect(l);
    const contexts = (list) =>
      list.length ? list.map((c) => contextHtml(c, vocab, scale, effScale)).join("") : '<p class="muted">No contexts.</p>';
    const legend = effScale > 0
      ? '<p class="legend">Second line: change of log p(next token) when the latent is ablated at the row — ' +
        '<span class="swatch up"></span> raised, <span class="swatch down"></span> lowered.</p>'
      : "";
    const bands = l.bands.length
      ? l.bands.map((b) =>
        '<div class="band"><h3>quantiles ' + fmt(b[0]) + "–" + fmt(b[1]) + ' <span class="muted">· activations ' +
        fmt(b[2]) + "–" + fmt(b[3]) + " · " + b[4].toLocaleString("en") + " rows</span></h3>" + contexts(b[5]) + "</div>").join("")
      : '<p class="muted">No bands.</p>';
    const mainCol =
      '<section id="histogram"><h2>Activations</h2>' + histogramSvg(l) + "</section>" +
      '<section id="top"><h2>Top activations</h2>' + legend + contexts(l.top) + "</section>" +
      '<section id="bands"><h2>Activation bands</h2>' + bands + "</section>";
    const side =
      '<section id="diagnosis"><h2>Diagnosis</h2>' + diagnosisHtml(d) + "</section>" +
      '<section id="logits"><h2>Logit lens</h2><div class="pair">' + logitTable("promoted", l.logitsTop, vocab) +
      logitTable("suppressed", l.logitsBottom, vocab) + "</div></section>" +
      '<section id="neighbours"><h2>Neighbours</h2><div class="pair">' + neighbourTable("co-firing", "Jaccard", l.cofiring) +
      neighbourTable("decoder", "cosine", l.decoder) + "</div></section>" +
      '<section id="labels"><h2>Labels</h2>' + labelTable(l.labels) + "</section>";
    return head + '<div class="layout"><aside class="side">' + side + '</aside><div class="body">' + mainCol + "</div></div>";
  }

  function allContexts(l) {
    let list = l.top;
    for (const b of l.bands) list = list.concat(b[5]);
    return list;
  }

  function maxAbs(l) {
    let m = 0;
    for (const c of allContexts(l)) for (const v of c[6]) if (v != null) m = Math.max(m, Math.abs(v));
    return m || 1;
  }

  function maxEffect(l) {
    let m = 0;
    for (const c of allContexts(l)) if (c[7]) for (const v of c[7]) if (v != null && isFinite(v)) m = Math.max(m, Math.abs(v));
    return m;
  }

  function contextHtml(c, vocab, scale, effScale) {
    const [row, text, position, value, tokens, centre, values, effect] = c;
    const where = "row " + row + " · text " + text + " · position " + position;
    let h = '<div class="ctx"><span class="cv" title="' + esc(where) + '">' + fmt(value) + '</span><span class="toks">';
    for (let i = 0; i < tokens.length; i++) {
      const v = values[i] === undefined ? 0 : values[i]; // holes are zeros
      let cls = "tok" + (i === centre ? " centre" : "") + (v === null ? " norow" : "");
      let attrs = ' data-token="' + vocab.ids[tokens[i]] + '"';
      if (v === null) attrs += ' title="no row in the store"';
      else {
        attrs += ' data-value="' + v + '" title="' + fmt(v) + '"';
        if (v !== 0) attrs += ' style="background:' + shade(v, scale, "255,140,0", "60,130,255") + '"';
        else cls += " zero";
      }
      h += '<span class="' + cls + '"' + attrs + ">" + esc(shown(tokenText(vocab, tokens[i]))) + "</span>";
    }
    h += "</span></div>";
    if (effect) {
      h += '<div class="ctx effect"><span class="cv" title="change of log p(next token) when ablated">Δlog p</span><span class="toks">';
      for (let i = 0; i < tokens.length; i++) {
        const e = effect[i] === undefined ? 0 : effect[i];
        const cls = "tok" + (i === centre ? " centre" : "") + (e === null ? " norow" : "");
        const attrs = e === null ? ' title="next token outside the text"'
          : ' data-effect="' + e + '" title="' + fmt(e) + '"' + (e ? ' style="background:' + shade(e, effScale, "40,110,255", "230,40,40") + '"' : "");
        h += '<span class="' + cls + '"' + attrs + ">" + esc(shown(tokenText(vocab, tokens[i]))) + "</span>";
      }
      h += "</span></div>";
    }
    return h;
  }

  function shade(v, scale, positive, negative) {
    const a = Math.min(1, Math.abs(v) / (scale || 1));
    return "rgba(" + (v > 0 ? positive : negative) + "," + (0.08 + 0.82 * a).toFixed(3) + ")";
  }

  function histogramSvg(l) {
    const counts = l.hist.counts;
    const edges = l.hist.edges || counts.map((_, i) => l.hist.lo + ((l.hist.hi - l.hist.lo) * i) / counts.length).concat([l.hist.hi]);
    if (!counts.length || counts.every((c) => c === 0)) return '<p class="muted">The latent never fired on these rows.</p>';
    const W = 640, H = 150, left = 48, right = 10, top = 10, bottom = 26;
    const width = W - left - right, height = H - top - bottom;
    const peak = Math.max(...counts);
    const lo = edges[0], hi = edges[edges.length - 1], span = hi - lo || 1;
    const x = (v) => left + (width * (v - lo)) / span;
    let bars = "";
    for (let i = 0; i < counts.length; i++) {
      const h = (height * counts[i]) / peak;
      const x0 = x(edges[i]), x1 = x(edges[i + 1]);
      bars += '<rect class="hbar" x="' + x0.toFixed(1) + '" y="' + (top + height - h).toFixed(1) + '" width="' +
        Math.max(0.5, x1 - x0 - 0.6).toFixed(1) + '" height="' + Math.max(counts[i] ? 1 : 0, h).toFixed(1) + '"><title>' +
        fmt(edges[i]) + "–" + fmt(edges[i + 1]) + ": " + counts[i].toLocaleString("en") + "</title></rect>";
    }
    const mean = l.mean > lo && l.mean < hi
      ? '<line class="mean" x1="' + x(l.mean).toFixed(1) + '" x2="' + x(l.mean).toFixed(1) + '" y1="' + top + '" y2="' + (top + height) +
        '"><title>mean ' + fmt(l.mean) + '</title></line><text class="axis" x="' + (x(l.mean) + 3).toFixed(1) + '" y="' + (top + 10) + '">mean</text>'
      : "";
    const axis =
      '<line class="axisline" x1="' + left + '" x2="' + (W - right) + '" y1="' + (top + height) + '" y2="' + (top + height) + '"/>' +
      '<text class="axis" x="' + left + '" y="' + (H - 8) + '">' + fmt(lo) + "</text>" +
      '<text class="axis" x="' + (W - right) + '" y="' + (H - 8) + '" text-anchor="end">' + fmt(hi) + "</text>" +
      '<text class="axis" x="' + (left + width / 2) + '" y="' + (H - 8) + '" text-anchor="middle">activation</text>' +
      '<text class="axis" x="' + (left - 4) + '" y="' + (top + 8) + '" text-anchor="end">' + peak.toLocaleString("en") + "</text>" +
      '<text class="axis" x="' + (left - 4) + '" y="' + (top + height) + '" text-anchor="end">0</text>';
    return '<svg class="hist" viewBox="0 0 ' + W + " " + H + '" role="img" aria-label="histogram of the nonzero activations">' +
      bars + mean + axis + "</svg>";
  }

  function logitTable(title, list, vocab) {
    if (!list.length) return '<div><h3>' + esc(title) + '</h3><p class="muted">–</p></div>';
    const scale = Math.max(...list.map((t) => Math.abs(t[1]))) || 1;
    return '<div><h3>' + esc(title) + '</h3><table class="logits"><tbody>' +
      list.map(([t, s]) => '<tr><td>' + tokenLabel(tokenText(vocab, t)) + '</td><td class="num" style="background:' +
        shade(s, scale, "40,110,255", "230,40,40") + '">' + fmt(s) + "</td></tr>").join("") + "</tbody></table></div>";
  }

  function neighbourTable(title, measure, list) {
    if (!list.length) return '<div><h3>' + esc(title) + '</h3><p class="muted">–</p></div>';
    return '<div><h3>' + esc(title) + '</h3><table class="neighbours"><thead><tr><th>latent</th><th class="num">' + esc(measure) +
      "</th></tr></thead><tbody>" + list.map(([n, s]) => "<tr><td>" + latentLink(n) + '</td><td class="num">' + fmt(s) + "</td></tr>").join("") +
      "</tbody></table></div>";
  }

  function labelTable(list) {
    if (!list.length) return '<p class="muted">No labels.</p>';
    return '<table class="labels"><thead><tr><th>label</th><th class="num">precision</th><th class="num">recall</th><th class="num">F1</th></tr></thead><tbody>' +
      list.map(([, name, p, r, f]) => "<tr><td>" + esc(name) + '</td><td class="num">' + fmt(p) + '</td><td class="num">' + fmt(r) +
        '</td><td class="num">' + fmt(f) + "</td></tr>").join("") + "</tbody></table>";
  }

  // One value of a diagnosis' details: numbers formatted, {key: value} as lines, lists of partner records as links.
  function detailHtml(v) {
    if (v === null || v === undefined) return "–";
    if (typeof v === "number") return fmt(v);
    if (typeof v === "string" || typeof v === "boolean") return esc(String(v));
    if (Array.isArray(v)) {
      if (!v.length) return "–";
      return v.map((item) => {
        if (item && typeof item === "object" && "partner" in item) {
          const rest = Object.entries(item).filter(([k]) => k !== "partner");
          return latentLink(item.partner) + ' <span class="muted">' +
            rest.map(([k, x]) => esc(k.replace(/_/g, " ")) + " " + (x === null ? "–" : typeof x === "number" ? fmt(x) : esc(String(x)))).join(", ") + "</span>";
        }
        return typeof item === "number" ? fmt(item) : esc(JSON.stringify(item));
      }).join("<br>");
    }
    return Object.entries(v).map(([k, x]) => esc(k) + ": " + (x === null ? "–" : typeof x === "number" ? fmt(x) : esc(JSON.stringify(x)))).join("<br>");
  }

  function diagnosisHtml(d) {
    if (!d) return '<p class="muted">Not diagnosed.</p>';
    d = Object.assign({ flags: [], nested_partner: null, nested_role: null, absorption_ratio: null, dense: false,
      antipodal_partner: null, split_pressure: null, residual_share: null, details: {} }, d); // defaults are left out
    const rows = [
      ["flags", d.flags.length ? flagBadges(d.flags) : '<span class="muted">none</span>'],
      ["nested partner", d.nested_partner === null ? "–" : latentLink(d.nested_partner) + (d.nested_role ? ' <span class="role">(' +
        esc(d.nested_role === "child" ? "this is the child" : d.nested_role === "parent" ? "this is the parent" : d.nested_role) + ")</span>" : "")],
      ["absorption ratio", fmt(d.absorption_ratio)],
      ["dense", d.dense ? "yes" : "no"],
      ["antipodal partner", d.antipodal_partner === null ? "–" : latentLink(d.antipodal_partner)],
      ["split pressure", fmt(d.split_pressure)],
      ["residual share", fmt(d.residual_share)],
    ];
    for (const [k, v] of Object.entries(d.details || {})) rows.push([k.replace(/_/g, " "), detailHtml(v)]);
    return '<table class="kv diagnosis">' + rows.map(([k, v]) => "<tr><th>" + esc(k) + "</th><td>" + v + "</td></tr>").join("") + "</table>";
  }

  // ---------------------------------------------------------------- start

  try {
    if (document.body.dataset.page === "latent") latentPage();
    else indexPage();
  } catch (error) {
    showError(error);
  }
})();
