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
    "claim-submitted": "零星报销申报", "budget-set": "总额预算", "alert-raised": "预警", "alert-resolved": "预警处理",
  };
  const ALERT_KINDS = { high_cost: "防返贫高额费用", price: "价格监测", fraud: "欺诈骗保疑点", indicator: "机构指标预警", filing: "报表报送" };
  const RULES = {
    "high_cost.burden": "年度个人负担达到预警线", "price.cap": "单价超过监测限价", "price.rise": "单价涨幅过高",
    "fraud.visit_frequency": "30日内门诊次数过多", "fraud.repeat_exam": "7日内重复检查", "fraud.idle_stay": "住院多日无费用(挂床)",
    "fraud.stockpiling": "用药天数超量(囤药)", "fraud.shared_credential": "一证多机构结算",
    "indicator.cost_growth_outpatient": "门诊次均费用增长", "indicator.cost_growth_inpatient": "住院次均费用增长",
    "indicator.self_pay_share": "个人负担比例", "indicator.exam_share": "检查费用占比",
    "indicator.outside_catalogue_share": "目录外费用占比", "indicator.essential_drug_share": "基本药物占比",
    "indicator.aid_self_pay_share": "救助对象自付比例", "filing.late": "日报未按时报送",
  };
  const RESOLUTIONS = {
    helped: "已化解", confirmed: "已查实", dismissed: "已排除", corrected: "已整改", referred: "已移交",
    withdrawn: "已撤回", filed: "已补报",
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
    $("alerts-page").hidden = true;
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
    if (location.hash === "#alerts") showPage("alerts");
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
    drawAlertCounts(s.alerts_open || {});
    drawSales(s.watched_sales || []);
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
      case "alert-raised":
        return (ALERT_KINDS[d.kind] || d.kind) + " · " + (RULES[d.rule] || d.rule) + (d.fixmedins_code ? " · " + d.fixmedins_code : "");
      case "alert-resolved":
        return (ALERT_KINDS[d.kind] || d.kind) + " · " + (RESOLUTIONS[d.resolution] || d.resolution || "");
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
      if (["settled", "settlement-reversed", "prepayment-disbursed", "subsidy-due", "alert-raised", "alert-resolved"]
        .includes(e.type)) scheduleRefresh();
      if (e.type === "alert-raised" || e.type === "alert-resolved") scheduleAlerts();
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
      case "institution-indicators": return "/v1/reports/institution-indicators?month=" + day.slice(0, 7) + "&format=" + format;
      case "watched-prices": return "/v1/reports/watched-prices?date=" + day + "&format=" + format;
      case "watched-sales": return "/v1/reports/watched-sales?date=" + day + "&format=" + format;
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

  // ---- supervision: alert counts, watched-goods sales, the alert page ----------------------------
  function drawAlertCounts(counts) {
    const row = $("alert-counts").querySelector("tbody tr");
    row.textContent = "";
    let open = 0;
    for (const k of ["high_cost", "price", "fraud", "indicator", "filing"]) {
      cell(row, String(counts[k] || 0), counts[k] ? "neg" : "");
      open += counts[k] || 0;
    }
    $("alerts-badge").textContent = open ? String(open) : "";
  }

  function drawSales(districts) {
    const svg = $("sales-chart");
    clear(svg);
    if (!districts.length) {
      svg.appendChild(el("text", { x: 10, y: 30, "font-size": 12, fill: "#5b6776" }, "当日无重点药品药店销售"));
      return;
    }
    const max = Math.max(1, ...districts.map((d) => Number(d.amount)));
    districts.slice(0, 8).forEach((d, i) => {
      const y = 8 + i * 19;
      const w = 330 * Number(d.amount) / max;
      svg.appendChild(el("text", { x: 4, y: y + 12, "font-size": 11, fill: "#1d2733" }, d.area_name || d.admdvs));
      const r = el("rect", { x: 110, y: y, width: Math.max(w, 1), height: 14, fill: "#d9822b", "data-admdvs": d.admdvs });
      r.appendChild(el("title", {}, (d.area_name || d.admdvs) + ":" + d.pharmacies + " 家药店,数量 " + d.quantity + ",金额 " + money(d.amount) + " 元"));
      svg.appendChild(r);
      svg.appendChild(el("text", { x: 116 + w, y: y + 12, "font-size": 11, fill: "#5b6776" }, money(d.amount)));
    });
  }

  function showPage(page) {
    const alertsShown = page === "alerts";
    $("board").hidden = alertsShown;
    $("alerts-page").hidden = !alertsShown;
    $("nav-board").classList.toggle("active", !alertsShown);
    $("nav-alerts").classList.toggle("active", alertsShown);
    if (location.hash !== (alertsShown ? "#alerts" : "")) history.replaceState(null, "", alertsShown ? "#alerts" : "#");
    if (alertsShown) loadAlerts().catch(() => {});
  }

  function message(text) { $("alerts-message").textContent = text; }

  function alertQuery() {
    const params = new URLSearchParams();
    const pairs = [["kind", "alert-filter-kind"], ["status", "alert-filter-status"], ["admdvs", "alert-filter-admdvs"],
      ["fixmedins_code", "alert-filter-code"], ["psn_no", "alert-filter-psn"]];
    for (const [name, id] of pairs) {
      const value = $(id).value.trim();
      if (value) params.set(name, value);
    }
    if ($("alert-filter-rollup").checked && params.get("admdvs")) params.set("rollup", "true");
    return params;
  }

  function summary(a) {
    const f = a.facts || {};
    switch (a.rule) {
      case "high_cost.burden": return f.year + " 年个人负担 " + money(f.burden) + " 元(预警线 " + money(f.threshold) + ")";
      case "price.cap": return (f.med_list_name || f.med_list_codg) + " " + f.day + " 单价 " + f.pric + "(限价 " + f.cap + ")";
      case "price.rise": return (f.med_list_name || f.med_list_codg) + " " + f.day + " 单价 " + f.pric + "(前期中位数 " + f.median + ")";
      case "fraud.visit_frequency": return a.window.start + " 至 " + a.window.end + " 门诊 " + f.visits + " 次";
      case "fraud.repeat_exam": return (f.med_list_name || f.med_list_codg) + " 间隔 " + f.days_apart + " 天";
      case "fraud.idle_stay": return "住院 " + f.begndate + " 至 " + f.enddate + ",连续 " + f.idle_days + " 天无费用";
      case "fraud.stockpiling": return (f.med_list_name || f.med_list_codg) + " 90 日内 " + f.supply_days + " 天";
      case "fraud.shared_credential": return f.day + " 在 " + f.institutions + " 家机构结算";
      case "filing.late": return (f.area_name || f.admdvs) + " " + f.date + " 日报未按时报送";
      default: return f.month ? f.month + " " + (f.value || "") + "(阈值 " + f.threshold + ")" : "";
    }
  }

  async function loadAlerts() {
    const response = await api("/v1/alerts?" + alertQuery().toString());
    if (!response.ok) { message("查询失败:" + response.status); return; }
    const body = await response.json();
    const tbody = $("alerts").querySelector("tbody");
    tbody.textContent = "";
    for (const a of body.items) {
      const tr = document.createElement("tr");
      tr.dataset.alertId = a.alert_id;
      tr.dataset.rule = a.rule;
      tr.dataset.kind = a.kind;
      tr.dataset.status = a.status;
      if (a.fixmedins_code) tr.dataset.fixmedinsCode = a.fixmedins_code;
      tr.className = a.status;
      cell(tr, a.raised_at.slice(0, 19).replace("T", " "));
      cell(tr, ALERT_KINDS[a.kind] || a.kind, "kind-" + a.kind);
      cell(tr, RULES[a.rule] || a.rule);
      cell(tr, [a.psn_no, a.fixmedins_code, a.admdvs].filter(Boolean).join(" · "));
      cell(tr, summary(a));
      cell(tr, a.status === "open" ? "待处理" : (RESOLUTIONS[a.resolution] || "已处理") + (a.note ? ":" + a.note : ""));
      const td = document.createElement("td");
      if (a.status === "open") {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "resolve-open";
        button.dataset.alertId = a.alert_id;
        button.textContent = "处理";
        td.appendChild(button);
      }
      tr.appendChild(td);
      tbody.appendChild(tr);
    }
    message("共 " + body.count + " 条" + (body.count > body.items.length ? ",显示最近 " + body.items.length + " 条" : ""));
  }

  let alertsTimer = null;
  function scheduleAlerts() {
    if ($("alerts-page").hidden || alertsTimer) return;
    alertsTimer = setTimeout(() => { alertsTimer = null; loadAlerts().catch(() => {}); }, 500);
  }

  function openResolve(alertId) {
    $("resolve-form").hidden = false;
    $("resolve-form").dataset.alertId = alertId;
    $("resolve-id").textContent = alertId;
    $("resolve-note").value = "";
    $("resolve-amount").value = "";
    $("resolve-note").focus();
  }

  async function submitResolve() {
    const alertId = $("resolve-form").dataset.alertId;
    const body = { resolution: $("resolve-resolution").value, note: $("resolve-note").value.trim() };
    const amount = $("resolve-amount").value.trim();
    if (amount) body.amount = amount;
    const response = await fetch("/v1/alerts/" + encodeURIComponent(alertId) + "/resolve", {
      method: "POST", headers: { "X-Api-Key": key(), "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    if (response.status === 403) { message("处理预警需要管理员(admin)密钥"); return; }
    if (!response.ok) {
      const problem = await response.json().catch(() => ({}));
      message("处理失败:" + (problem.detail || response.status));
      return;
    }
    $("resolve-form").hidden = true;
    await loadAlerts();
    message("预警 " + alertId + " 已处理(" + (RESOLUTIONS[body.resolution] || body.resolution) + ")");
  }

  async function exportAlerts() {
    const params = alertQuery();
    params.set("format", "xlsx");
    const response = await api("/v1/alerts?" + params.toString());
    if (!response.ok) { message("导出失败:" + response.status); return; }
    const blob = await response.blob();
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = "alerts.xlsx";
    document.body.appendChild(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 10000);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", (e) => { login(e).catch((err) => { $("login-error").textContent = String(err); }); });
    $("logout").addEventListener("click", () => logout(""));
    $("day").addEventListener("change", () => refresh().catch(() => {}));
    $("board").addEventListener("click", (e) => { download(e).catch(() => {}); });
    $("reconcile").addEventListener("click", () => reconcile().catch(() => {}));
    $("nav-board").addEventListener("click", () => showPage("board"));
    $("nav-alerts").addEventListener("click", () => showPage("alerts"));
    $("to-alerts").addEventListener("click", (e) => { e.preventDefault(); showPage("alerts"); });
    $("alert-filters").addEventListener("submit", (e) => { e.preventDefault(); loadAlerts().catch(() => {}); });
    $("alert-export").addEventListener("click", () => exportAlerts().catch(() => {}));
    $("alerts").addEventListener("click", (e) => {
      const button = e.target.closest("button.resolve-open");
      if (button) openResolve(button.dataset.alertId);
    });
    $("resolve-form").addEventListener("submit", (e) => { e.preventDefault(); submitResolve().catch((err) => message(String(err))); });
    $("resolve-cancel").addEventListener("click", () => { $("resolve-form").hidden = true; });
    if (key()) start();
  });
})();
