"""The status page's style sheet and its one small inline script, as strings.

The script only ages the heartbeat, shows the stale banner, filters rows and reloads the
page; it reads numbers from ``data-`` attributes of ``<body>`` and never builds HTML, so
nothing a job wrote can become code. Without it the page shows everything, refreshed by a
``<noscript>`` meta refresh.
"""

from __future__ import annotations

from batchman.core import states as S

_STATE_COLOURS = "".join(f".s-{s}{{--c:{c}}}" for s, c in S.HTML_COLOURS.items())

CSS = """:root{color-scheme:light dark;--fg:#1d1d1f;--bg:#fff;--mute:#666;--line:#ccc;--bad:#b00020;--ok:#176d2b;
--card:#f6f6f6;--completed:#5cb85c;--problem:#d9534f;--inbatch:#3d8bd9;--staging:#e0b000;--waiting:#b8b8b8}
@media (prefers-color-scheme:dark){:root{--fg:#e8e8e8;--bg:#141414;--mute:#aaa;--line:#444;--bad:#ff6b6b;
--ok:#6fd08c;--card:#222}}
*{box-sizing:border-box}[hidden]{display:none!important}html,body{overflow-x:hidden}
body{font:15px/1.4 system-ui,sans-serif;margin:0 auto;padding:.6em;max-width:1800px;color:var(--fg);background:var(--bg);
overflow-wrap:anywhere}
h1{font-size:1.25em;margin:.1em 0}h2{font-size:1.1em;margin:1em 0 .3em}p{margin:.3em 0}
small,.mute{color:var(--mute)}.ok{color:var(--ok)}.calm{color:var(--mute)}.bad{color:var(--bad);font-weight:bold}
.stale{background:var(--bad);color:#fff;padding:.3em .5em;font-weight:bold;border-radius:4px}
.progress{display:flex;height:1.6em;border:1px solid var(--line);border-radius:4px;overflow:hidden;margin:.3em 0}
.progress span{display:block;height:100%;min-width:2px}
.g-completed{fill:var(--completed);background:var(--completed)}
.g-problem{fill:var(--problem);background:var(--problem) repeating-linear-gradient(45deg,transparent 0 3px,#0006 3px 4px)}
.g-inbatch{fill:var(--inbatch);background:var(--inbatch) repeating-linear-gradient(-45deg,transparent 0 4px,#0004 4px 5px)}
.g-staging{fill:var(--staging);background:var(--staging) radial-gradient(#0005 1px,transparent 1.5px) 0 0/5px 5px}
.g-waiting{fill:var(--waiting);background:var(--waiting) repeating-linear-gradient(0deg,transparent 0 4px,#0003 4px 5px)}
.big{font-size:1.3em;font-weight:bold}
ul.counts{list-style:none;padding:0;margin:.3em 0;display:flex;flex-wrap:wrap;gap:.25em .4em}
ul.counts li{border-left:6px solid var(--c);background:var(--card);padding:0 .4em;border-radius:3px}
.facts{display:flex;flex-wrap:wrap;gap:0 1em}
.problems li{margin:.25em 0}
.plots{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,520px),1fr));gap:.5em 1.5em}
figure{margin:0}figcaption{font-weight:bold}
svg.plot{width:100%;height:auto;font-size:15px;fill:var(--fg)}
svg.plot .axis-bg{fill:none;stroke:var(--line)}svg.plot .bar{fill:var(--inbatch)}
svg.plot .bar.tail{fill:var(--problem)}svg.plot .limit{stroke:var(--fg);stroke-dasharray:4 3}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid var(--line);padding:2px 6px;text-align:left;vertical-align:top}
table.num td+td,table.num th+th{text-align:right}
.wide{overflow-x:auto}table.num th,table.num td{overflow-wrap:normal;white-space:nowrap}
table.rows tr{border-left:6px solid var(--c,transparent)}
#filter{font-size:1em;padding:.3em;width:100%;max-width:30em}
section.tasks{content-visibility:auto;contain-intrinsic-size:auto 3000px}
details{margin:.3em 0}summary{cursor:pointer}.ranges{font-family:monospace;font-size:90%}
@media (max-width:700px){table.rows thead{display:none}
table.rows,table.rows tbody,table.rows tr{display:block}
table.rows tr{margin:.3em 0;padding:.2em .4em;background:var(--card);border-radius:4px}
table.rows td{display:inline;border:0;padding:0 .5em 0 0}
table.rows td.d{display:block}table.rows td.j::before{content:'job '}table.rows td.a::before{content:'try '}table.rows td:empty{display:none}}
""" + _STATE_COLOURS

SCRIPT = """(function(){
var b=document.body,d=b.dataset,written=+d.written,stale=+d.stale,refresh=+d.refresh;
function ago(s){s=Math.max(0,Math.round(s));return s<120?s+' s':s<7200?Math.round(s/60)+' min':(s/3600).toFixed(1)+' h';}
function tick(){
  var now=Date.now()/1000,a=document.querySelectorAll('[data-t]');
  for(var i=0;i<a.length;i++)a[i].textContent=ago(now-(+a[i].getAttribute('data-t')));
  if(stale){var s=document.getElementById('stale'),h=document.getElementById('hb'),age=now-written;
    if(age>stale){s.textContent='page not updated for '+Math.floor(age/60)+' min: is the daemon running?';
      s.hidden=false;h.className='bad';}else{s.hidden=true;}}
}
tick();setInterval(tick,5000);
var f=document.getElementById('filter'),rows=null;
if(f){f.hidden=false;f.addEventListener('input',function(){
  if(!rows){rows=[].slice.call(document.querySelectorAll('table.rows tbody tr')).map(function(r){
    return [r,r.textContent.toLowerCase()];});}
  var q=f.value.trim().toLowerCase(),n=0;
  for(var i=0;i<rows.length;i++){var show=!q||rows[i][1].indexOf(q)>=0;rows[i][0].hidden=!show;if(show)n++;}
  document.getElementById('shown').textContent=q?n+' row(s) match':'';});}
if(refresh){setInterval(function(){if(!f||!f.value)location.reload();},refresh*1000);}
})();"""
