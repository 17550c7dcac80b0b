// Renders the unit-economics report: from the JSON embedded in the page (the HTML report file) or fetched from
// /dashboard/data (the served dashboard). Charts are Chart.js (bundled next to this file).
(function () {
  'use strict';
  const usd = (v, none) => v === null || v === undefined ? none : '$' + Number(v).toLocaleString('en-US', { maximumFractionDigits: Math.abs(v) < 1 ? 6 : 2 });
  const pct = (v, none) => v === null || v === undefined ? none : (Number(v) * 100).toFixed(1) + '%';
  const num = v => Number(v).toLocaleString('en-US');
  const hour = h => h.substring(5, 13).replace('T', ' ') + 'h';
  const el = (tag, attrs, text) => { const e = document.createElement(tag); Object.assign(e, attrs || {}); if (text !== undefined) e.textContent = text; return e; };

  function figure(parent, id, label, value, note) {
    const box = el('div', { className: 'figure' });
    box.dataset.figure = id;
    box.append(el('div', { className: 'label' }, label), el('div', { className: 'value' }, value));
    if (note) box.append(el('div', { className: 'note' }, note));
    parent.append(box);
  }

  function chart(parent, id, title, config) {
    const box = el('div', { className: 'chart' });
    box.append(el('h2', {}, title));
    const canvas = el('canvas', { id: 'chart-' + id });
    canvas.dataset.chart = id;
    box.append(canvas);
    parent.append(box);
    config.options = Object.assign({ animation: false, responsive: true, maintainAspectRatio: false }, config.options || {});
    new Chart(canvas, config);
  }

  function table(parent, title, head, rows) {
    parent.append(el('h2', {}, title));
    const t = el('table');
    const tr = el('tr');
    head.forEach(h => tr.append(el('th', {}, h)));
    t.append(tr);
    rows.forEach(r => { const row = el('tr'); r.forEach(c => row.append(el('td', {}, c))); t.append(row); });
    parent.append(t);
  }

  function render(r, root) {
    const t = r.total;
    root.append(el('h1', {}, 'Unit economics'));
    root.append(el('div', { className: 'window' }, r.since + ' to ' + r.until + ' · by ' + r.by.toLowerCase()));
    const figures = el('div', { className: 'figures' });
    root.append(figures);
    figure(figures, 'requests', 'Requests', num(t.requests), t.errors ? num(t.errors) + ' errors' : '');
    figure(figures, 'tokens', 'Tokens', num(t.input_tokens + t.output_tokens), num(t.input_tokens) + ' in / ' + num(t.output_tokens) + ' out');
    figure(figures, 'cost', 'Cost (fully loaded)', usd(t.cost_usd, 'unpriced'), t.unpriced_requests ? num(t.unpriced_requests) + ' requests unpriced' : '');
    figure(figures, 'marginal-cost', 'Marginal cost', usd(t.marginal_cost_usd, 'unpriced'));
    figure(figures, 'revenue', 'Revenue', usd(t.revenue_usd, 'no plan'), t.unplanned_requests ? num(t.unplanned_requests) + ' requests without a plan' : '');
    figure(figures, 'cost-per-million', 'Cost per 1M tokens', usd(t.cost_per_million_tokens_usd, 'unpriced'));
    figure(figures, 'gross-margin', 'Gross margin', pct(t.gross_margin, 'no plan'));
    figure(figures, 'cost-share', 'Inference cost / revenue', pct(t.cost_share_of_revenue, 'no plan'));
    figure(figures, 'fixed-share', 'Fixed share of cost', pct(r.fixed_share, 'no cost'));
    figure(figures, 'utilisation', 'Owned utilisation', r.pools.length ? pct(r.pools.reduce((a, p) => a + p.busy_hours, 0) / Math.max(1e-12, r.pools.reduce((a, p) => a + p.window_hours, 0)), '-') : 'no owned pool');
    figure(figures, 'stranded', 'Stranded cost', r.pools.length ? usd(r.stranded_cost_usd, '-') : 'no owned pool', 'idle owned capacity × its idle cost' + (r.pools.length ? '; ' + r.pools.map(p => p.stranded_basis).join('; ') : ''));
    figure(figures, 'savings', 'Savings (all levers)', usd(r.total_savings_usd, '-'));
    figure(figures, 'hhi', 'Supplier concentration (HHI)', r.supplier_hhi === null ? 'no spend' : Number(r.supplier_hhi).toFixed(0), '10,000 = one supplier');
    figure(figures, 'next-million', 'Next 1M tokens', usd(r.next_million_tokens_usd, 'unpriced'), 'at the current load');

    const charts = el('div', { className: 'charts' });
    root.append(charts);
    const labels = r.series.map(p => hour(p.hour));
    chart(charts, 'money', 'Cost, revenue and margin per hour (USD)', { type: 'line', data: { labels, datasets: [
      { label: 'cost', data: r.series.map(p => p.cost_usd), borderColor: '#cf222e' },
      { label: 'revenue (no plan: gap)', data: r.series.map(p => p.revenue_usd), borderColor: '#1a7f37' },
      { label: 'margin', data: r.series.map(p => p.margin_usd), borderColor: '#0969da' }] } });
    chart(charts, 'tokens', 'Tokens per hour', { type: 'bar', data: { labels, datasets: [{ label: 'tokens', data: r.series.map(p => p.tokens), backgroundColor: '#8250df' }] } });
    chart(charts, 'cache', 'Cache hit rate per hour', { type: 'line', data: { labels, datasets: [{ label: 'hit rate', data: r.series.map(p => p.cache_hit_rate), borderColor: '#bf8700' }] },
      options: { scales: { y: { min: 0, max: 1 } } } });
    chart(charts, 'utilisation', 'Owned-pool utilisation per hour', { type: 'line', data: { labels, datasets: [{ label: 'utilisation', data: r.series.map(p => p.owned_utilisation), borderColor: '#1a7f37', fill: true }] },
      options: { scales: { y: { min: 0, max: 1 } } } });
    // Waterfall: what the traffic would have cost without the levers, each lever's step down, what it cost.
    const cost = Number(t.cost_usd || 0);
    let top = cost + r.savings.reduce((a, s) => a + Number(s.savings_usd), 0);
    const steps = [{ label: 'without levers', range: [0, top], color: '#57606a' }];
    r.savings.forEach(s => { steps.push({ label: s.lever, range: [top - Number(s.savings_usd), top], color: '#1a7f37' }); top -= Number(s.savings_usd); });
    steps.push({ label: 'cost', range: [0, cost], color: '#cf222e' });
    chart(charts, 'waterfall', 'Savings waterfall (USD)', { type: 'bar', data: { labels: steps.map(s => s.label), datasets: [{ label: 'USD', data: steps.map(s => s.range), backgroundColor: steps.map(s => s.color) }] },
      options: { plugins: { legend: { display: false } } } });
    chart(charts, 'fixed-variable', 'Fixed vs variable cost', { type: 'doughnut', data: { labels: ['fixed (owned)', 'variable (API / rented)'], datasets: [{ data: [t.fixed_cost_usd, t.variable_cost_usd], backgroundColor: ['#0969da', '#bf8700'] }] } });
    chart(charts, 'routing', 'Routing mix (requests by route reason)', { type: 'bar', data: { labels: r.routing_mix.map(m => m.key), datasets: [{ label: 'requests', data: r.routing_mix.map(m => m.value), backgroundColor: '#0969da' }] },
      options: { indexAxis: 'y', plugins: { legend: { display: false } } } });
    chart(charts, 'providers', 'Spend by provider (USD)', { type: 'bar', data: { labels: r.spend_by_provider.map(m => m.key), datasets: [{ label: 'USD', data: r.spend_by_provider.map(m => m.value), backgroundColor: '#cf222e' }] },
      options: { plugins: { legend: { display: false } } } });
    const curve = [];
    r.marginal_curve.forEach(s => { curve.push({ x: s.from_tokens, y: s.usd_per_million }); curve.push({ x: s.to_tokens, y: s.usd_per_million }); });
    chart(charts, 'marginal', 'Marginal cost of the next 1M tokens (USD per 1M)', { type: 'line', data: { datasets: [{ label: 'USD per 1M at that point', data: curve, borderColor: '#cf222e', stepped: true }] },
      options: { scales: { x: { type: 'linear', title: { display: true, text: 'next tokens' } } } } });

    table(root, 'Breakdown by ' + r.by.toLowerCase(), ['group', 'requests', 'tokens', 'cost', 'marginal cost', 'revenue', 'cost / 1M', 'gross margin', 'cost / revenue', 'cache hit rate'],
      r.rows.concat([t]).map(x => [x.group, num(x.requests), num(x.input_tokens + x.output_tokens), usd(x.cost_usd, 'unpriced'), usd(x.marginal_cost_usd, 'unpriced'),
        usd(x.revenue_usd, 'no plan'), usd(x.cost_per_million_tokens_usd, 'unpriced'), pct(x.gross_margin, 'no plan'), pct(x.cost_share_of_revenue, 'no plan'), pct(x.cache_hit_rate, '-')]));
    table(root, 'Savings by lever', ['lever', 'saved', 'counterfactual'], r.savings.map(s => [s.lever, usd(s.savings_usd, '-'), s.counterfactual]));
    table(root, 'Owned pools', ['pool', 'window h', 'busy h', 'utilisation', 'pool cost', 'loaded cost', 'stranded cost', 'tokens / busy h'],
      r.pools.map(p => [p.provider, Number(p.window_hours).toFixed(2), Number(p.busy_hours).toFixed(4), pct(p.utilisation, '-'), usd(p.pool_cost_usd, '-'), usd(p.loaded_cost_usd, '-'),
        usd(p.stranded_cost_usd, '-'), p.tokens_per_busy_hour === null ? '-' : num(Math.round(p.tokens_per_busy_hour))]));
    table(root, 'Marginal cost curve', ['from token', 'to token', 'source', 'USD per 1M'], r.marginal_curve.map(s => [num(s.from_tokens), num(s.to_tokens), s.source, usd(s.usd_per_million, 'unpriced')]));
    root.dataset.rendered = 'true';
  }

  const root = document.getElementById('dashboard');
  const embedded = document.getElementById('economics-data');
  if (embedded) {
    render(JSON.parse(embedded.textContent), root);
  } else {
    fetch('dashboard/data' + location.search, { credentials: 'same-origin' })
      .then(res => res.ok ? res.json() : res.json().then(e => { throw new Error(e.error.message); }))
      .then(r => render(r, root))
      .catch(e => { root.append(el('p', { className: 'error' }, 'Could not load the figures: ' + e.message)); });
  }
})();
