// Client-side play loop. Keys and pad buttons set the held action; one step request is in flight at a
// time, so a slow machine drops frames instead of queueing them. This loop is the only writer of the
// displayed frames; Python handlers change the world through `props.value`, which is watched.
const KEYS = {KeyW: 1, ArrowUp: 1, KeyS: 2, ArrowDown: 2, KeyA: 3, ArrowLeft: 3, KeyD: 4, ArrowRight: 4,
              KeyQ: 5, KeyE: 6, KeyG: 'plan'};  // 'plan': a step the latent planner chooses
const root = element.querySelector('.wg-player');
const $ = (sel) => element.querySelector(sel);
const held = [];          // held actions, most recent last
let busy = false;
let shown = [];           // timestamps of frames shown in the last second
let token = null;         // names this tab's session; arrives with the first world
let pauseUntil = 0;       // back off after an error instead of hammering the server

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

function show(v) {
  if (!v) return;
  if (v.error) { $('.wg-error').textContent = v.error; pauseUntil = performance.now() + 1000; return false; }
  $('.wg-error').textContent = '';
  if (v.dream) $('.wg-dream').src = v.dream;
  $('.wg-truth-fig').style.display = v.truth ? '' : 'none';
  if (v.truth) $('.wg-truth').src = v.truth;
  $('.wg-step').textContent = 'step ' + v.step;
  $('.wg-psnr').textContent = v.psnr == null ? 'PSNR: -' :
    `PSNR: ${v.psnr.toFixed(1)} dB (mean ${v.mean_psnr.toFixed(1)})`;
  $('.wg-source').textContent = v.source || '';
  $('.wg-goal-fig').style.display = v.goal ? '' : 'none';
  if (v.goal) $('.wg-goal').src = v.goal;
  root.dataset.step = v.step;
  if (v.token) token = v.token;
  return true;
}

watch('value', () => { if (props.value && props.value.version !== undefined) show(props.value); });

function updateFps() {
  const now = performance.now();
  shown = shown.filter((t) => now - t < 1000);
  const fps = shown.length < 2 ? 0 : (shown.length - 1) * 1000 / (now - shown[0]);
  $('.wg-fps').textContent = 'FPS: ' + fps.toFixed(1);
  root.dataset.fps = fps.toFixed(2);
}

async function tick() {
  const action = held.length ? held[held.length - 1] : null;
  if (action !== null && !busy && token && performance.now() > pauseUntil) {
    busy = true;
    try {
      const v = await server.play_step({token: token, action: action});
      if (show(v)) shown.push(performance.now());
    } catch (err) {
      $('.wg-error').textContent = 'step failed: ' + err;
      pauseUntil = performance.now() + 1000;
    } finally {
      busy = false;
    }
  }
  updateFps();
  requestAnimationFrame(tick);
}
root.dataset.ready = '1';
requestAnimationFrame(tick);
