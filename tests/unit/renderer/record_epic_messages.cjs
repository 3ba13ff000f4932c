// Records player -> streamer messages with Epic's own encoder (lib-pixelstreamingfrontend-ue5.5,
// SendMessageController over the default protocol) into epic_messages.json:
//   cd web && node ../tests/unit/renderer/record_epic_messages.cjs > ../tests/unit/renderer/epic_messages.json

const base = process.cwd() + '/node_modules/@epicgames-ps/lib-pixelstreamingfrontend-ue5.5/dist/cjs/';
const { StreamMessageController } = require(base + 'UeInstanceMessage/StreamMessageController.js');
const { SendMessageController } = require(base + 'UeInstanceMessage/SendMessageController.js');
const smc = new StreamMessageController();
smc.populateDefaultProtocol();
const sent = [];
const sender = { canSend: () => true, sendData: (buf) => sent.push(Buffer.from(buf).toString('hex')) };
const ctl = new SendMessageController(sender, smc);
const cases = [
  ['UIInteraction', [JSON.stringify({type: 'set_paint', color: '#1e6fd9', seq: 7})]],
  ['UIInteraction', [JSON.stringify('toggle_frunk')]],
  ['Command', [JSON.stringify({ConsoleCommand: 'stat fps'})]],
  ['LatencyTest', [JSON.stringify({StartTime: 1733050000000})]],
  ['RequestInitialSettings', []],
  ['RequestQualityControl', []],
  ['MouseDown', [0, 32768, 30000]],
  ['MouseMove', [33000, 30000, 1638, -20]],
  ['MouseUp', [0, 33000, 30000]],
  ['MouseWheel', [-120, 32768, 32768]],
  ['KeyDown', [39, 0]],
  ['KeyUp', [39]],
  ['KeyPress', [102]],
  ['TouchStart', [1, 16384, 40000, 0, 255, 1]],
  ['TouchMove', [1, 20000, 40000, 0, 255, 1]],
  ['TouchEnd', [1, 20000, 40000, 0, 0, 1]],
  ['GamepadAnalog', [0, 1, 0.5]],
  ['MouseEnter', []],
  ['TextboxEntry', ['hello']],
];
const recorded = cases.map(([name, data]) => {
  sent.length = 0;
  ctl.sendMessageToStreamer(name, data);
  return { name, fields: data, hex: sent[0] };
});
console.log(JSON.stringify({ library: require(base + '../../package.json').version, messages: recorded }, null, 1));
