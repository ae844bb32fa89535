// The ops dashboard: reads the reporting API with the key typed in (kept in sessionStorage only),
// listens to the live event stream with a short-lived ticket, draws its charts as inline SVG.
"use strict";

(function () {
  const KEY = "yibao.ops.key";
  const SVG = "http://www.w3.org/2000/svg";
  const FEED_MAX = 200;
  const TYPES = {
    "settled": "结算", "settlement-reversed": "冲销", "subsidy-due": "财政补助", "prepayment-disbursed": "预付金拨付",
    "person-changed": "参保人变更", "institution-changed": "机构变更", "covid-case-registered": "新冠病例",
    "claim-submitted": "零星报销申报", "budget-set": "总额预算",
  };
  const STATUS = { confirmed: "确诊", suspected: "疑似", excluded: "排除" };
  const KINDS = { annual_turnover: "年初周转金", covid_special: "专项预付金", monthly: "月度预付", top_up: "追加专项" };
  const SPLIT = [
    ["hifp_pay", "统筹基金", "#1f6fbf"], ["hifmi_pay", "大病保险", "#5aa0e0"], ["maf_pay", "医疗救助", "#2e9e6a"],
    ["tilt_aid_pay", "倾斜救助", "#7cc79b"], ["fin_subsidy_pay", "财政补助", "#d9822b"], ["acct_pay", "个人账户", "#9b7bd1"],
    ["psn_cash_pay", "个人现金", "#b3261e"],
  ];

  const $ = (id) => document.getElementById(id);
  let stream = null;
  let lastSeq = null;
  let refreshTimer = null;
  const seen = new Set();

  function key() { return sessionStorage.getItem(KEY); }

  function today() {
    const parts = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date());
    return parts;  // YYYY-MM-DD
  }

  function addDays(day, n) {
    const d = new Date(day + "T00:00:00Z");
    d.setUTCDate(d.getUTCDate() + n);
    return d.toISOString().slice(0, 10);
  }

  function money(value) {
    const n = Number(value || 0);
    return n.toLocaleString("zh-CN", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  async function api(path, options) {
    const response = await fetch(path, Object.assign({ headers: { "X-Api-Key": key() } }, options || {}));
    if (response.status === 401 || response.status === 403) {
      logout(response.status === 401 ? "密钥无效" : "该密钥无权查看报表(需 ops 或 admin)");
      throw new Error("unauthorised");
    }
    return response;
  }

  // ---- login ---------------------------------------------------------------------------------
  async function login(event) {
    event.preventDefault();
    const value = $("key").value.trim();
    sessionStorage.setItem(KEY, value);
    const probe = await fetch("/v1/dashboard?date=" + today(), { headers: { "X-Api-Key": value } });
    if (!probe.ok) {
      sessionStorage.removeItem(KEY);
      $("login-error").textContent = probe.status === 403 ? "该密钥无权查看报表(需 ops 或 admin)" : "密钥无效";
      return;
    }
    $("key").value = "";
    start();
  }

  function logout(message) {
    sessionStorage.removeItem(KEY);
    if (stream) { stream.close(); stream = null; }
    $("board").hidden = true;
    $("controls").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    setLive(false);
  }

  function start() {
    $("login").hidden = true;
    $("board").hidden = false;
    $("controls").hidden = false;
    if (!$("day").value) $("day").value = today();
    refresh();
    connect();
  }

  // ---- summary -------------------------------------------------------------------------------
  async function refresh() {
    const day = $("day").value || today();
    $("download-hint").textContent = "日报为业务日期 " + day + " 的结算;台账与预付金表按填报日期 " + addDays(day, 1) +
      "(截至 " + day + " 17:00)。";
    const response = await api("/v1/dashboard?date=" + day);
    if (!response.ok) return;
    const s = await response.json();
    const d = s.day;
    $("c-count").textContent = d.count;
    $("c-medfee").textContent = money(d.medfee_sumamt);
    $("c-fund").textContent = money(d.fund_pay_sumamt);
    $("c-fin").textContent = money(d.fin_subsidy_pay);
    $("c-psn").textContent = money(d.psn_pay);
    $("c-rev").textContent = d.reversals;
    $("c-covid").textContent = d.covid.count + " 笔 / " + money(d.covid.medfee_sumamt) + " 元";
    drawSplit(d);
    drawHours(s.per_hour);
    drawPositions(s.positions, s.subsidies_by_payer);
    if (lastSeq === null) {
      for (const e of s.recent_events) addEvent(e.id, e);
    }
  }

  function scheduleRefresh() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(() => { refreshTimer = null; refresh().catch(() => {}); }, 1000);
  }

  // ---- charts (inline SVG) -------------------------------------------------------------------
  function el(name, attrs, text) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function drawSplit(day) {
    const svg = $("split-chart");
    clear(svg);
    const parts = SPLIT.map(([k, label, color]) => [label, Math.max(Number(day[k] || 0), 0), color]);
    const total = parts.reduce((a, p) => a + p[1], 0);
    let x = 10;
    const width = 500;
    svg.appendChild(el("rect", { x: 10, y: 10, width: width, height: 34, fill: "#eef0f3" }));
    for (const [label, value, color] of parts) {
      if (!total || !value) continue;
      const w = width * value / total;
      const r = el("rect", { x: x, y: 10, width: w, height: 34, fill: color });
      r.appendChild(el("title", {}, label + " " + money(value) + " 元"));
      svg.appendChild(r);
      x += w;
    }
    parts.forEach(([label, value, color], i) => {
      const lx = 10 + (i % 4) * 128;
      const ly = 66 + Math.floor(i / 4) * 40;
      svg.appendChild(el("rect", { x: lx, y: ly, width: 12, height: 12, fill: color }));
      svg.appendChild(el("text", { x: lx + 16, y: ly + 11, "font-size": 12, fill: "#1d2733" }, label));
      const pct = total ? (100 * value / total).toFixed(1) + "%" : "0%";
      svg.appendChild(el("text", { x: lx + 16, y: ly + 27, "font-size": 11, fill: "#5b6776" }, money(value) + " · " + pct));
    });
  }

  function drawHours(hours) {
    const svg = $("hour-chart");
    clear(svg);
    const max = Math.max(1, ...hours.map((h) => Math.abs(h.count)));
    const left = 30, bottom = 150, height = 130, step = 20;
    svg.appendChild(el("line", { x1: left, y1: bottom, x2: left + 24 * step, y2: bottom, stroke: "#9aa5b1" }));
    svg.appendChild(el("text", { x: 2, y: bottom - height + 4, "font-size": 10, fill: "#5b6776" }, String(max)));
    hours.forEach((h) => {
      const bar = height * Math.abs(h.count) / max;
      const x = left + h.hour * step + 3;
      const r = el("rect", { x: x, y: h.count >= 0 ? bottom - bar : bottom, width: step - 6, height: bar,
        fill: h.count >= 0 ? "#1f6fbf" : "#b3261e", "data-hour": h.hour, "data-count": h.count });
      r.appendChild(el("title", {}, h.hour + " 时:" + h.count + " 笔,医疗费 " + money(h.medfee_sumamt) + " 元"));
      svg.appendChild(r);
      if (h.hour % 3 === 0) {
        svg.appendChild(el("text", { x: x, y: bottom + 14, "font-size": 10, fill: "#5b6776" }, String(h.hour)));
      }
    });
    svg.appendChild(el("text", { x: left + 24 * step - 20, y: bottom + 28, "font-size": 10, fill: "#5b6776" }, "时"));
  }

  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
  }

  function drawPositions(positions, payers) {
    const body = $("positions").querySelector("tbody");
    body.textContent = "";
    for (const p of positions) {
      const tr = document.createElement("tr");
      cell(tr, p.fixmedins_name + "(" + p.fixmedins_code + ")");
      for (const k of ["prepaid", "special", "fund_payable", "acct_payable", "subsidy_receivable"]) cell(tr, money(p[k]));
      cell(tr, money(p.net), Number(p.net) < 0 ? "neg" : "");
      body.appendChild(tr);
    }
    const row = $("payers").querySelector("tbody tr");
    row.textContent = "";
    for (const k of ["central", "provincial", "city", "county"]) cell(row, money(payers[k]));
  }

  // ---- live feed -----------------------------------------------------------------------------
  function describe(e) {
    const d = e.data || {};
    switch (e.type) {
      case "settled":
        return d.setl_id + " · " + d.fixmedins_code + " · 医疗费 " + money(d.medfee_sumamt) + " · 基金 " + money(d.fund_pay_sumamt) +
          (d.covid_status ? " · 新冠" + (STATUS[d.covid_status] || "") : "");
      case "settlement-reversed":
        return d.setl_id + " · " + d.fixmedins_code + " · 医疗费 -" + money(d.medfee_sumamt);
      case "subsidy-due":
        return d.setl_id + " · " + (d.reversal ? "冲回 " : "") + money(d.amount) + " 元(" + (STATUS[d.case_status] || "") + ")";
      case "prepayment-disbursed":
        return d.fixmedins_code + " · " + (KINDS[d.kind] || d.kind) + " · " + money(d.amount) + " 元";
      case "institution-changed":
        return d.fixmedins_code + " " + (d.fixmedins_name || "") + (d.suspended ? "(暂停)" : "");
      case "covid-case-registered":
        return d.fixmedins_code + " · " + (STATUS[d.status] || d.status) + (d.published ? " · 已公布" : "");
      case "person-changed":
        return (d.change || "") + " · " + (d.insutype || "") + " · " + (d.insuplc_admdvs || "");
      case "budget-set":
        return d.fixmedins_code + " · " + d.year + " 年 · " + money(d.amount) + " 元";
      default:
        return d.claim_id || "";
    }
  }

  function addEvent(seq, e) {
    if (seen.has(e.event_id)) return;
    seen.add(e.event_id);
    const li = document.createElement("li");
    li.className = e.type + ((e.data && e.data.covid_status) ? " covid" : "");
    li.dataset.eventId = e.event_id;
    li.dataset.type = e.type;
    if (e.data && e.data.setl_id) li.dataset.setlId = e.data.setl_id;
    const t = document.createElement("span");
    t.className = "t";
    t.textContent = (e.occurred_at || "").slice(11, 19);
    const k = document.createElement("span");
    k.className = "k";
    k.textContent = TYPES[e.type] || e.type;
    const text = document.createElement("span");
    text.textContent = describe(e);
    li.append(t, k, text);
    const feed = $("feed");
    feed.insertBefore(li, feed.firstChild);
    while (feed.children.length > FEED_MAX) feed.removeChild(feed.lastChild);
    $("feed-count").textContent = "(最近 " + feed.children.length + " 条)";
  }

  function setLive(on) {
    $("live").className = "live " + (on ? "on" : "off");
    $("live").textContent = on ? "● 实时" : "● 未连接";
  }

  async function connect() {
    if (stream) { stream.close(); stream = null; }
    if (!key()) return;
    let ticket;
    try {
      const response = await api("/v1/events/stream-tickets", { method: "POST" });
      ticket = (await response.json()).ticket;
    } catch (err) {
      setLive(false);
      setTimeout(connect, 5000);
      return;
    }
    const since = lastSeq === null ? "" : "&since=" + lastSeq;
    stream = new EventSource("/v1/events/stream?ticket=" + encodeURIComponent(ticket) + since);
    stream.onopen = () => setLive(true);
    stream.onmessage = (message) => {
      const seq = Number(message.lastEventId);
      lastSeq = Number.isFinite(seq) ? seq : lastSeq;
      const e = JSON.parse(message.data);
      addEvent(seq, e);
      if (["settled", "settlement-reversed", "prepayment-disbursed", "subsidy-due"].includes(e.type)) scheduleRefresh();
    };
    stream.onerror = () => {
      setLive(false);
      if (stream) stream.close();
      stream = null;
      setTimeout(connect, 3000);  // a fresh ticket each time; `since` resumes where the feed stopped
    };
  }

  // ---- downloads -----------------------------------------------------------------------------
  function reportUrl(report, format) {
    const day = $("day").value || today();
    switch (report) {
      case "daily": return "/v1/reports/daily?date=" + day + "&format=" + format;
      case "daily-cumulative": return "/v1/reports/daily?date=" + day + "&cumulative=true&format=" + format;
      case "covid-ledger": return "/v1/reports/covid-ledger?date=" + addDays(day, 1) + "&format=" + format;
      case "prepayments": return "/v1/reports/prepayments?date=" + addDays(day, 1) + "&format=" + format;
      case "two-diseases": return "/v1/reports/two-diseases?month=" + day.slice(0, 7) + "&format=" + format;
      default: return "/v1/reports/indicators?year=" + day.slice(0, 4) + "&format=" + format;
    }
  }

  async function download(event) {
    const button = event.target.closest("button[data-report]");
    if (!button) return;
    const response = await api(reportUrl(button.dataset.report, button.dataset.format));
    if (!response.ok) { alert("下载失败:" + response.status); return; }
    const blob = await response.blob();
    const match = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = match ? match[1] : "report." + button.dataset.format;
    document.body.appendChild(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 10000);
  }

  async function reconcile() {
    const day = $("day").value || today();
    const out = $("reconcile-result");
    out.textContent = "对账中…";
    const response = await api("/v1/reconciliation?date=" + day);
    const body = await response.json();
    if (!response.ok) { out.textContent = "结算服务不可用:" + (body.detail || response.status); return; }
    out.textContent = body.differences.length === 0
      ? "一致:" + body.reporting.count + " 笔,医疗费 " + money(body.reporting.medfee_sumamt) + " 元"
      : "差异:" + body.differences.map((d) => d.field + " 结算=" + d.settlement + " 报表=" + d.reporting).join(";");
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", (e) => { login(e).catch((err) => { $("login-error").textContent = String(err); }); });
    $("logout").addEventListener("click", () => logout(""));
    $("day").addEventListener("change", () => refresh().catch(() => {}));
    $("board").addEventListener("click", (e) => { download(e).catch(() => {}); });
    $("reconcile").addEventListener("click", () => reconcile().catch(() => {}));
    if (key()) start();
  });
})();
