// A model trained in the page, as the file charrnn writes (charrnn/runs/weights.py): one safetensors file, float32
// tensors named as torch's state_dict names them, and the charrnn header (format, model config, vocabulary, what
// the run records) as JSON in the metadata's "charrnn" entry. The CLI, the app and the Hub code load it as they
// load their own: `python -m charrnn generate --checkpoint FILE`.
//   CharrnnWeights.safetensors(tensors, header) -> Uint8Array
//     tensors: {name: {shape: [..], data: Float32Array}} in any order; header: the charrnn header (an object).
"use strict";
self.CharrnnWeights = (() => {
  const FORMAT = "charrnn/1";

  function safetensors(tensors, header) {
    const names = Object.keys(tensors);
    const entries = {__metadata__: {charrnn: JSON.stringify({format: FORMAT, ...header})}};
    let offset = 0;
    for (const name of names) {
      const {shape, data} = tensors[name];
      const count = shape.reduce((a, b) => a * b, 1);
      if (!(data instanceof Float32Array) || data.length !== count) {
        throw new Error(`tensor ${name}: ${data && data.length} floats for shape [${shape}]`);
      }
      entries[name] = {dtype: "F32", shape, data_offsets: [offset, offset + 4 * count]};
      offset += 4 * count;
    }
    let json = new TextEncoder().encode(JSON.stringify(entries));
    const padded = Math.ceil(json.length / 8) * 8;              // the data starts 8-byte aligned (spaces pad)
    const head = new Uint8Array(padded).fill(0x20);
    head.set(json);
    json = head;
    const out = new Uint8Array(8 + json.length + offset);
    const view = new DataView(out.buffer);
    view.setBigUint64(0, BigInt(json.length), true);
    out.set(json, 8);
    let at = 8 + json.length;
    for (const name of names) {
      const {data} = tensors[name];
      const bytes = new Uint8Array(data.length * 4);
      const floats = new DataView(bytes.buffer);
      for (let i = 0; i < data.length; i++) floats.setFloat32(4 * i, data[i], true);    // little-endian always
      out.set(bytes, at);
      at += bytes.length;
    }
    return out;
  }

  return {FORMAT, safetensors};
})();
