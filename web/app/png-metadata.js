// Reads the text chunks of a PNG file (tEXt, zTXt, iTXt), where saved images carry their "workflow" and
// "prompt" as JSON — so dropping a generated PNG on the canvas opens the graph that made it.

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

function isPng(bytes) {
  return SIGNATURE.every((value, i) => bytes[i] === value);
}

async function inflate(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function splitAtZero(bytes, start) {
  const end = bytes.indexOf(0, start);
  return end < 0 ? [bytes.length, bytes.length] : [end, end + 1];
}

const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder("utf-8");

async function readTextChunk(type, data) {
  const [keyEnd, afterKey] = splitAtZero(data, 0);
  const keyword = latin1.decode(data.subarray(0, keyEnd));
  if (type === "tEXt") return [keyword, latin1.decode(data.subarray(afterKey))];
  if (type === "zTXt") return [keyword, latin1.decode(await inflate(data.subarray(afterKey + 1)))];
  // iTXt: compression flag, method, language tag\0, translated keyword\0, text
  const compressed = data[afterKey] === 1;
  const [, afterLanguage] = splitAtZero(data, afterKey + 2);
  const [, afterTranslated] = splitAtZero(data, afterLanguage);
  const body = data.subarray(afterTranslated);
  return [keyword, utf8.decode(compressed ? await inflate(body) : body)];
}

/**
 * The text chunks of a PNG as { keyword: text }; an empty object for anything that is not a PNG.
 * @param {ArrayBuffer} buffer
 */
export async function readPngText(buffer) {
  const bytes = new Uint8Array(buffer);
  const texts = {};
  if (!isPng(bytes)) return texts;
  const view = new DataView(buffer);
  let offset = 8;
  while (offset + 8 <= bytes.length) {
    const length = view.getUint32(offset);
    const type = latin1.decode(bytes.subarray(offset + 4, offset + 8));
    const data = bytes.subarray(offset + 8, offset + 8 + length);
    if (type === "IEND") break;
    if (type === "tEXt" || type === "zTXt" || type === "iTXt") {
      const [keyword, text] = await readTextChunk(type, data);
      texts[keyword] = text;
    }
    offset += 12 + length;
  }
  return texts;
}
