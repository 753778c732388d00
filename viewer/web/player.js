// Client-side play loop. Keys and pad buttons set the held action; the page tells the server over one
// websocket (viewer/stream.py) what is held, and the server streams frames while it is, at most one ahead
// of what this page has acknowledged, so a slow machine drops frames instead of queueing them. Python
// handlers change the world through `props.value`, which is watched; a streamed frame older than the
// newest world version is dropped.
const KEYS = {KeyW: 1, ArrowUp: 1, KeyS: 2, ArrowDown: 2, KeyA: 3, ArrowLeft: 3, KeyD: 4, ArrowRight: 4,
              KeyQ: 5, KeyE: 6, KeyG: 'plan'};  // 'plan': a step the latent planner chooses
const root = element.querySelector('.wg-player');
const $ = (sel) => element.querySelector(sel);
const held = [];          // held actions, most recent last
let shown = [];           // timestamps of frames shown in the last second
let token = null;         // names this tab's session; arrives with the first world
let version = -1;         // newest world version shown
let pauseUntil = 0;       // back off after an error instead of hammering the server
let ws = null, wsToken = null, sent;  // the play channel, the token it speaks for, the action it was told

function typing(e) {
  const t = e.target;
  return t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.isContentEditable);
}
function press(a) { if (!held.includes(a)) held.push(a); }
function release(a) { const i = held.indexOf(a); if (i >= 0) held.splice(i, 1); }

document.addEventListener('keydown', (e) => {
  if (!(e.code in KEYS) || typing(e)) return;
  e.preventDefault();           // no page scrolling
  press(KEYS[e.code]);
});
document.addEventListener('keyup', (e) => { if (e.code in KEYS) release(KEYS[e.code]); });
window.addEventListener('blur', () => held.splice(0, held.length));

element.querySelectorAll('.wg-pad button').forEach((b) => {
  const a = b.dataset.action === 'plan' ? 'plan' : Number(b.dataset.action);
  const on = (e) => { e.preventDefault(); press(a); b.classList.add('held'); };
  const off = () => { release(a); b.classList.remove('held'); };
  b.addEventListener('pointerdown', on);
  ['pointerup', 'pointerleave', 'pointercancel'].forEach((ev) => b.addEventListener(ev, off));
});
$('.wg-smooth').addEventListener('change', (e) => root.classList.toggle('smooth', e.target.checked));

function put(sel, text) {  // write only what changed: each DOM write costs a layout
  const el = $(sel);
  if (el.textContent !== text) el.textContent = text;
}
function display(sel, on) {
  const el = $(sel), want = on ? '' : 'none';
  if (el.style.display !== want) el.style.display = want;
}

function show(v) {
  if (!v) return;
  if (v.error) { put('.wg-error', v.error); pauseUntil = performance.now() + 1000; return false; }
  if (v.version < version) return false;
  version = v.version;
  put('.wg-error', '');
  if (v.dream) $('.wg-dream').src = v.dream;
  display('.wg-truth-fig', v.truth);
  if (v.truth) $('.wg-truth').src = v.truth;
  put('.wg-step', 'step ' + v.step);
  put('.wg-res', v.resolution ? `${v.resolution}×${v.resolution}` : '');
  put('.wg-psnr', v.psnr == null ? 'PSNR: -' : `PSNR: ${v.psnr.toFixed(1)} dB (mean ${v.mean_psnr.toFixed(1)})`);
  put('.wg-source', v.source || '');
  display('.wg-goal-fig', v.goal);
  if (v.goal) $('.wg-goal').src = v.goal;
  root.dataset.step = v.step;
  if (v.token) token = v.token;
  return true;
}

watch('value', () => { if (props.value && props.value.version !== undefined) show(props.value); });

let fpsAt = 0;             // when the FPS counter was last written
function updateFps(now) {
  // Four times a second: writing the page every animation frame costs a layout and a paint each time,
  // CPU that the model needs on a small machine.
  if (now - fpsAt < 250) return;
  fpsAt = now;
  shown = shown.filter((t) => now - t < 1000);
  const fps = shown.length < 2 ? 0 : (shown.length - 1) * 1000 / (now - shown[0]);
  $('.wg-fps').textContent = 'FPS: ' + fps.toFixed(1);
  root.dataset.fps = fps.toFixed(2);
}

function connect() {
  wsToken = token;
  sent = undefined;
  const url = new URL('worldgen/play', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const sock = new WebSocket(url);
  ws = sock;
  sock.onopen = () => sock.send(JSON.stringify({token: wsToken}));
  sock.onmessage = (e) => {
    const v = JSON.parse(e.data);
    if (v.error) { sent = undefined; }  // the server stops after an error until told again
    if (show(v)) shown.push(performance.now());
    if (v.seq !== undefined) sock.send(JSON.stringify({ack: v.seq}));
  };
  sock.onclose = () => { if (ws === sock) { ws = null; pauseUntil = performance.now() + 1000; } };
}

function tick() {
  const now = performance.now();
  if (token && (!ws || wsToken !== token) && now > pauseUntil) {
    if (ws) { const old = ws; ws = null; old.close(); }
    connect();
  }
  let action = held.length ? held[held.length - 1] : null;
  if (now < pauseUntil) action = null;
  if (ws && ws.readyState === WebSocket.OPEN && action !== sent) {
    ws.send(JSON.stringify({action: action}));
    sent = action;
  }
  updateFps(now);
  requestAnimationFrame(tick);
}
root.dataset.ready = '1';
requestAnimationFrame(tick);
