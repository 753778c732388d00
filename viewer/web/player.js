// Client-side play loop. Keys and pad buttons set the held action; the page tells the server over one
// websocket (viewer/stream.py) what is held, and the server streams frames while it is, at most one ahead
// of what this page has acknowledged, so a slow machine drops frames instead of queueing them. A streamed
// frame is binary (PlaySession.frame): its raw RGB goes straight into the canvases, nothing to decode (and,
// with "what memory knew" ticked, its map of what the world memory knew of each pixel into a third).
// Python handlers change the world through `props.value` (PNG data URLs), which is watched; a streamed
// frame older than the newest world version is dropped. Nothing runs per animation frame: the page works
// only when a key changes or a frame arrives, and the two cores stay with the model.
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

function typing(e) {  // keys into a field or a slider are the user's; a box just ticked leaves them for walking
  const t = e.target;
  if (!t) return false;
  if (t.tagName === 'INPUT') return !['checkbox', 'radio', 'button'].includes(t.type);
  return t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || t.isContentEditable;
}
function press(a) { if (!held.includes(a)) { held.push(a); sync(); } }
function release(a) { const i = held.indexOf(a); if (i >= 0) { held.splice(i, 1); sync(); } }

document.addEventListener('keydown', (e) => {
  if (!(e.code in KEYS) || typing(e)) return;
  e.preventDefault();           // no page scrolling
  press(KEYS[e.code]);
});
document.addEventListener('keyup', (e) => { if (e.code in KEYS) release(KEYS[e.code]); });
window.addEventListener('blur', () => { held.splice(0, held.length); sync(); });

element.querySelectorAll('.wg-pad button').forEach((b) => {
  const a = b.dataset.action === 'plan' ? 'plan' : Number(b.dataset.action);
  const on = (e) => { e.preventDefault(); press(a); b.classList.add('held'); };
  const off = () => { release(a); b.classList.remove('held'); };
  b.addEventListener('pointerdown', on);
  ['pointerup', 'pointerleave', 'pointercancel'].forEach((ev) => b.addEventListener(ev, off));
});
$('.wg-smooth').addEventListener('change', (e) => root.classList.toggle('smooth', e.target.checked));
const memoryOn = () => $('.wg-memory-on').checked;
$('.wg-memory-on').addEventListener('change', () => { if (!memoryOn()) display('.wg-memory-fig', false); });

function put(sel, text) {  // write only what changed: each DOM write costs a layout
  const el = $(sel);
  if (el.textContent !== text) el.textContent = text;
}
function display(sel, on) {
  const el = $(sel), want = on ? '' : 'none';
  if (el.style.display !== want) el.style.display = want;
}

function painted(canvas) {  // count the dream's pictures on screen (tests and the bench wait for the first)
  if (canvas === dream) root.dataset.frames = Number(root.dataset.frames || 0) + 1;
}
function drawRGB(canvas, rgb, res) {  // raw RGB bytes (res*res*3) into a res x res canvas
  canvas.drawn = (canvas.drawn || 0) + 1;
  if (canvas.width !== res) canvas.width = canvas.height = res;
  const ctx = canvas.getContext('2d'), img = ctx.createImageData(res, res), d = img.data;
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    d[j] = rgb[i]; d[j + 1] = rgb[i + 1]; d[j + 2] = rgb[i + 2]; d[j + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  painted(canvas);
}
function drawURL(canvas, url) {  // a PNG data URL, decoded first: drawn only if no newer frame came meanwhile
  const at = canvas.drawn = (canvas.drawn || 0) + 1, im = new Image();
  im.onload = () => {
    if (canvas.drawn !== at) return;
    if (canvas.width !== im.width) { canvas.width = im.width; canvas.height = im.height; }
    canvas.getContext('2d').drawImage(im, 0, 0);
    painted(canvas);
  };
  im.src = url;
}
const dream = $('.wg-dream'), truth = $('.wg-truth'), memory = $('.wg-memory');

// What the world memory knew of each dream pixel when the frame was made, by the names the server sends
// (world_model.SOURCES, in the order of the map's indices): a colour and a caption for each.
const KNOWN = {
  real: [[70, 190, 110], 'green: a real frame'], dreamed: [[80, 130, 240], 'blue: dreamed before'],
  magnified: [[240, 200, 70], 'yellow: magnified, repainted'], unknown: [[230, 70, 90], 'red: painted new'],
};
function drawKnown(map, names, res) {  // one byte per pixel, an index into `names`
  const colours = names.map((n) => (KNOWN[n] || [[128, 128, 128]])[0]);
  if (memory.width !== res) memory.width = memory.height = res;
  const ctx = memory.getContext('2d'), img = ctx.createImageData(res, res), d = img.data;
  for (let i = 0, j = 0; i < map.length; i++, j += 4) {
    const c = colours[map[i]] || [0, 0, 0];
    d[j] = c[0]; d[j + 1] = c[1]; d[j + 2] = c[2]; d[j + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  put('.wg-memory-key', names.map((n) => (KNOWN[n] || [0, n])[1]).join(' · '));
  root.dataset.memory = Number(root.dataset.memory || 0) + 1;
}

let hudView = null;  // the newest view whose numbers the HUD does not show yet
function writeHud() {  // text that changes every frame costs a layout and a paint each time
  const v = hudView;
  if (!v) return;
  hudView = null;
  put('.wg-step', 'step ' + v.step);
  put('.wg-res', v.resolution ? `${v.resolution}×${v.resolution}` : '');
  put('.wg-psnr', v.psnr == null ? 'PSNR: -' : `PSNR: ${v.psnr.toFixed(1)} dB (mean ${v.mean_psnr.toFixed(1)})`);
  put('.wg-source', (v.source || '') + (v.follow ? ' · following the player' : ''));
  const n = v.stopped || 0;  // moves on end the dream's camera stood still on: it takes the way as blocked
  put('.wg-stopped', n ? `blocked in the dream${n > 1 ? ` for ${n} moves` : ''}: turn to walk on` : '');
}

function show(v, pixels) {  // a view: from Python (pictures as data URLs) or streamed (`pixels`: raw RGB)
  if (!v) return;
  if (v.error) { put('.wg-error', v.error); pauseUntil = performance.now() + 1000; return false; }
  if (v.version < version) return false;
  version = v.version;
  put('.wg-error', '');
  if (pixels) {
    const n = v.resolution * v.resolution * 3, at = v.truth ? 2 * n : n;
    drawRGB(dream, pixels.subarray(0, n), v.resolution);
    if (v.truth) drawRGB(truth, pixels.subarray(n, 2 * n), v.resolution);
    if (v.memory && memoryOn()) drawKnown(pixels.subarray(at, at + n / 3), v.memory, v.resolution);
    display('.wg-memory-fig', v.memory && memoryOn());
  } else {
    if (v.dream) drawURL(dream, v.dream);
    if (v.truth) drawURL(truth, v.truth);
    display('.wg-memory-fig', false);  // a new world, an undo: no step has been made from it yet
  }
  display('.wg-truth-fig', v.truth);
  hudView = v;
  if (!pixels) writeHud();  // streamed frames: four times a second, with the FPS counter
  if ('goal' in v) {  // streamed frames leave the goal as it is
    display('.wg-goal-fig', v.goal);
    if (v.goal) $('.wg-goal').src = v.goal;
  }
  root.dataset.step = v.step;
  if (v.token) token = v.token;
  return true;
}

watch('value', () => {
  if (props.value && props.value.version !== undefined) { show(props.value); sync(); }
});

function updateFps() {  // four times a second, from the frames shown in the last second
  const now = performance.now();
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
  sock.binaryType = 'arraybuffer';
  sock.onopen = () => { sock.send(JSON.stringify({token: wsToken})); sync(); };
  sock.onmessage = (e) => {
    let v, pixels;
    if (typeof e.data === 'string') {
      v = JSON.parse(e.data);
    } else {  // a 4-byte length, the JSON fields, then the pictures' raw RGB
      const n = new DataView(e.data).getUint32(0, true);
      v = JSON.parse(decoder.decode(new Uint8Array(e.data, 4, n)));
      pixels = new Uint8Array(e.data, 4 + n);
    }
    if (v.error) { sent = undefined; }  // the server stops after an error until told again
    if (show(v, pixels)) shown.push(performance.now());
    if (v.seq !== undefined) sock.send(JSON.stringify({ack: v.seq}));
  };
  sock.onclose = () => { if (ws === sock) { ws = null; pauseUntil = performance.now() + 1000; } };
}
const decoder = new TextDecoder();

function sync() {  // connect when there is a session to play, and tell the server what is held
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
}
setInterval(() => { sync(); updateFps(); writeHud(); }, 250);
root.dataset.ready = '1';
