"""Static and interactive pictures: an SVG of packed layouts, one self-contained HTML file per trace.

Note: plain SVG written directly, not matplotlib: a layout map is rectangles and labels, which a
few lines of SVG draw exactly (no optional dependency, byte-stable output the tutorial's
up-to-date check can compare). The HTML viewer is one file with its data and script inline: no
server, no network, no external script.
"""

from __future__ import annotations

import html
import json
from typing import Any

import numpy as np

from .explain import value_text
from .kernels import Operand
from .layout_map import block_bytes, runs, token
from .trace import Trace, instruction, za_position

__all__ = ["layout_svg", "trace_html"]

_FILL = {"data": "#9ecae1", "bias": "#fdd49e", "scale": "#a1d99b", "row-sum": "#c7e9c0", "zero-point": "#dadaeb"}
_CELL = 11  # pixels per byte


def _fill(info: Any) -> str:
    if info.padding:
        return "#eeeeee"
    if info.field == "data" and info.k is not None:
        return ("#9ecae1", "#6baed6")[info.k % 2]  # alternate shades show the k groups
    return _FILL.get(info.field, "#cccccc")


def _operand_svg(
    op: Operand, line_bytes: int, y0: int, max_lines: int, hits: set[int] | None = None
) -> tuple[list[str], int]:
    parts = [f'<text x="4" y="{y0 + 14}" font-weight="bold">{html.escape(op.role + " " + op.fmt)}</text>']
    y = y0 + 22
    if op.layout is None:
        parts.append(f'<text x="4" y="{y + 12}">{html.escape(op.note)}</text>')
        return parts, y + 22
    per_block = block_bytes(op.layout)
    lines = 0
    for r in runs(op.layout):
        row, col = divmod(r.offset, line_bytes)
        if row >= max_lines:
            parts.append(f'<text x="4" y="{y + max_lines * (_CELL + 6) + 12}">... ({op.layout.size()} bytes)</text>')
            lines = max_lines + 1
            break
        lines = max(lines, row + 1)
        x, yy, w = 70 + col * _CELL, y + row * (_CELL + 6), r.size * _CELL
        tip = html.escape(f"byte {r.offset}..{r.offset + r.size - 1}: {r.info.text}")
        hit = hits is not None and any(r.offset <= h < r.offset + r.size for h in hits)
        stroke = 'class="hit" stroke="#d62728" stroke-width="2.5"' if hit else 'stroke="#555" stroke-width="0.5"'
        parts.append(
            f'<rect x="{x}" y="{yy}" width="{w}" height="{_CELL + 4}" fill="{_fill(r.info)}" {stroke}>'
            f"<title>{tip}</title></rect>"
        )
        if w >= 6 * len(token(r.info)):
            parts.append(f'<text x="{x + 1}" y="{yy + _CELL}" font-size="8">{html.escape(token(r.info))}</text>')
        if col == 0:
            label = f"+{r.offset:#06x}" + (" |" if r.offset % per_block == 0 else "")
            parts.append(f'<text x="4" y="{yy + _CELL}" font-size="9">{label}</text>')
    return parts, y + lines * (_CELL + 6) + 10


def layout_svg(
    ops: list[Operand],
    line_bytes: int,
    title: str,
    *,
    max_lines: int = 64,
    hits: dict[str, set[int]] | None = None,
    notes: list[str] | None = None,
) -> str:
    """An SVG of the operands' packed bytes, one vector register (``line_bytes``) per row; each
    rectangle is one run (an element, a nibble pair, a scale ...) with its description as tooltip.
    ``hits``: byte offsets per role (``LHS`` / ``RHS``) to outline in red (``where``'s answer),
    with ``notes`` (its text) under the title."""
    parts: list[str] = [f'<text x="4" y="14" font-weight="bold">{html.escape(title)}</text>']
    y = 22
    for note in notes or []:
        parts.append(f'<text x="4" y="{y + 10}" fill="#d62728">{html.escape(note)}</text>')
        y += 16
    for op in ops:
        more, y = _operand_svg(op, line_bytes, y, max_lines, None if hits is None else hits.get(op.role, set()))
        parts += more
    width = max(80 + line_bytes * _CELL, 7 * max(len(t) for t in [title, *(notes or [])]) + 10)
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" font-family="monospace" font-size="11">'
    )
    return "\n".join([head, f'<rect width="{width}" height="{y}" fill="white"/>', *parts, "</svg>"]) + "\n"


def _runs_json(layout: Any) -> list[list[Any]]:
    if layout is None:
        return []
    return [
        [
            r.offset,
            r.size,
            token(r.info),
            r.info.row if r.info.row is not None else r.info.col,
            r.info.k,
            r.info.field,
            int(r.info.padding),
            r.info.text,
        ]
        for r in runs(layout)
    ]


def _grid(a: Any) -> list[list[str]]:
    return [[value_text(v) for v in row] for row in np.asarray(a)]


def _trace_data(t: Trace, lhs_layout: Any, rhs_layout: Any) -> dict[str, Any]:
    za = [[za_position(t.kernel, i, j).text for j in range(t.n)] for i in range(t.m)]
    tiles = [[za_position(t.kernel, i, j).tile for j in range(t.n)] for i in range(t.m)]
    return {
        "title": f"{t.kernel.name} at SVL {t.kernel.svl}: m {t.m}, n {t.n}, k {t.k}",
        "instruction": instruction(t.kernel),
        "epilogue": t.epilogue,
        "kstep": t.kstep,
        "k": t.k,
        "steps": t.recorded,
        "states": [_grid(s) for s in t.states],
        "ints": None if t.block_sums is None else [_grid(s) for s in t.block_sums],
        "unit": "block" if t.blockwise else "step",
        "out": _grid(t.out),
        "za": za,
        "tiles": tiles,
        "lhs": _runs_json(lhs_layout),
        "rhs": _runs_json(rhs_layout),
        "vlb": t.kernel.vlb,
    }


_STYLE = """
body{font-family:monospace;font-size:12px;margin:8px}
.buf{display:flex;flex-wrap:wrap;max-width:1100px;margin-bottom:8px}
.run{border:1px solid #888;margin:0;padding:1px;font-size:9px;height:14px;overflow:hidden;box-sizing:border-box}
.data{background:#9ecae1}.bias{background:#fdd49e}.scale{background:#a1d99b}.row-sum{background:#c7e9c0}
.zero-point{background:#dadaeb}.pad{background:#eee;color:#999}
.read{outline:2px solid #d62728;outline-offset:-2px}.hover{background:#ffd700 !important}
table{border-collapse:collapse;margin:4px 12px 8px 0}td{border:1px solid #bbb;padding:2px 4px;text-align:right}
.t0{background:#f7fbff}.t1{background:#fff5eb}.t2{background:#f7fcf5}.t3{background:#fcfbfd}
.changed{font-weight:bold;color:#08519c}.panels{display:flex;flex-wrap:wrap}
"""

_SCRIPT = r"""
const D = JSON.parse(document.getElementById('trace-data').textContent);
let cur = 0, timer = null;
function el(tag, cls, text){
  const e=document.createElement(tag); if(cls) e.className=cls;
  if(text!==undefined) e.textContent=text; return e;
}
function buffer(id, runs, lhs){
  const box=document.getElementById(id);
  runs.forEach((r,x)=>{const d=el('div','run '+(r[6]?'pad':r[5]),r[2]); d.style.width=(Math.max(r[1],1)*6+12)+'px';
    d.title='byte '+r[0]+'..'+(r[0]+r[1]-1)+': '+r[7]; d.dataset.index=r[3]; d.dataset.k=(r[4]===null?'':r[4]);
    d.dataset.field=r[5]; d.dataset.lhs=lhs?'1':'0'; box.appendChild(d);});
}
function grid(id, values, withTiles){
  const t=document.getElementById(id); t.innerHTML='';
  values.forEach((row,i)=>{const tr=el('tr'); row.forEach((v,j)=>{
    const td=el('td',withTiles?'t'+(D.tiles[i][j]%4):'',v.split(' ')[0]);
    td.title=v+(withTiles?'\n'+D.za[i][j]:''); td.dataset.i=i; td.dataset.j=j; tr.appendChild(td);});
    t.appendChild(tr);});
}
function show(s){
  cur=Math.max(0,Math.min(D.steps.length-1,s));
  const step=D.steps[cur], k0=(step-1)*D.kstep, k1=step*D.kstep;
  document.getElementById('label').textContent = step===0 ? 'after init ('+D.unit+' 0 of '+D.steps[D.steps.length-1]+')'
    : 'after '+D.unit+' '+step+' of '+D.steps[D.steps.length-1]+': k '+k0+'..'+(Math.min(k1,D.k)-1);
  grid('za', D.states[cur], true);
  if(D.ints) grid('ints', D.ints[cur], true);
  if(cur>0){document.querySelectorAll('#za td').forEach(td=>{const i=+td.dataset.i,j=+td.dataset.j;
    if(D.states[cur][i][j]!==D.states[cur-1][i][j]) td.classList.add('changed');});}
  document.querySelectorAll('.run').forEach(d=>{const k=d.dataset.k===''?-1:+d.dataset.k;
    d.classList.toggle('read', step>0 && d.dataset.field==='data' && k>=k0 && k<k1);});
  document.body.dataset.step=String(step);
  document.body.dataset.read=String(document.querySelectorAll('.run.read').length);
  hookCells();
}
function highlight(i,j,on){
  document.querySelectorAll('td').forEach(td=>{
    if(+td.dataset.i===i && +td.dataset.j===j) td.classList.toggle('hover',on);});
  document.querySelectorAll('.run').forEach(d=>{const idx=+d.dataset.index;
    if((d.dataset.lhs==='1' && idx===i) || (d.dataset.lhs==='0' && idx===j)) d.classList.toggle('hover',on);});
  document.getElementById('where').textContent = on ? 'C['+i+', '+j+']: '+D.za[i][j]+'; output '+D.out[i][j] : '';
}
function hookCells(){document.querySelectorAll('td').forEach(td=>{
  td.onmouseenter=()=>highlight(+td.dataset.i,+td.dataset.j,true);
  td.onmouseleave=()=>highlight(+td.dataset.i,+td.dataset.j,false);});}
function play(){ if(timer){clearInterval(timer); timer=null; return;}
  timer=setInterval(()=>{ if(cur>=D.steps.length-1){clearInterval(timer); timer=null;} else show(cur+1);}, 700);}
document.getElementById('title').textContent=D.title;
document.getElementById('instr').textContent='each step: '+D.instruction+'; epilogue: '+D.epilogue.join('; ');
buffer('lhs', D.lhs, true); buffer('rhs', D.rhs, false); grid('out', D.out, false);
document.getElementById('back').onclick=()=>show(cur-1);
document.getElementById('step').onclick=()=>show(cur+1);
document.getElementById('play').onclick=play;
const m=/step=(\d+)/.exec(location.hash); show(m ? D.steps.indexOf(+m[1]) : 0);
const h=/hover=(\d+),(\d+)/.exec(location.hash); if(h) highlight(+h[1], +h[2], true);
"""


def trace_html(t: Trace, *, lhs_layout: Any = None, rhs_layout: Any = None) -> str:
    """One self-contained HTML page: step / play / back through the trace; hovering an output or
    accumulator cell highlights it and the packed LHS row and RHS column bytes that fed it.
    ``#step=N`` in the URL opens at step N; ``#hover=i,j`` starts with C[i, j] highlighted."""
    data = json.dumps(_trace_data(t, lhs_layout, rhs_layout)).replace("</", "<\\/")
    ints = (
        '<div><b>ZA int32 sums of this block (before its SCVTF)</b><table id="ints"></table></div>'
        if t.blockwise
        else ""
    )
    acc_title = (
        "float accumulator after this block (bold: changed)"
        if t.blockwise
        else "accumulators (ZA tiles shaded; bold: changed by this step)"
    )
    body = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>kleidiref trace</title><style>{_STYLE}</style></head>
<body>
<h3 id="title"></h3><div id="instr"></div>
<p><button id="back">&lt; back</button> <button id="step">step &gt;</button> <button id="play">play / pause</button>
 <span id="label"></span></p>
<div id="where"></div>
<div class="panels">{ints}<div><b>{acc_title}</b><table id="za"></table></div>
<div><b>output (= run_matmul)</b><table id="out"></table></div></div>
<b>packed LHS (red: the bytes this step reads)</b><div class="buf" id="lhs"></div>
<b>packed RHS</b><div class="buf" id="rhs"></div>
<script type="application/json" id="trace-data">{data}</script>
<script>{_SCRIPT}</script>
</body></html>
"""
    return body
