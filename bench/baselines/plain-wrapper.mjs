// The baseline a user writes by hand: node:http, JSON.parse, new ort.Tensor, one session.run()
// per request. Usage: node plain-wrapper.mjs <model.onnx> <port>
import http from 'node:http'
import { readFileSync } from 'node:fs'
import { InferenceSession, Tensor } from 'onnxruntime-node'

const [file, port] = process.argv.slice(2)
const session = await InferenceSession.create(readFileSync(file))
const input = session.inputNames[0]

http
  .createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', async () => {
      try {
        const rows = JSON.parse(body).inputs[input]
        const data = Float32Array.from(rows.flat())
        const out = await session.run({
          [input]: new Tensor('float32', data, [rows.length, rows[0].length]),
        })
        const json = {}
        for (const [name, t] of Object.entries(out))
          json[name] = Array.from(t.data, (v) => (typeof v === 'bigint' ? Number(v) : v))
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ outputs: json }))
      } catch (e) {
        res.writeHead(400, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ error: String(e) }))
      }
    })
  })
  .listen(Number(port), '127.0.0.1', () => console.log('ready'))
