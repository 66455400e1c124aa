// Sends identify, track, page, screen, group and alias calls to a siyu server through the
// official @segment/analytics-node client, then prints a JSON summary and exits non-zero when
// the client reports a failed delivery. Driven by internal/ingest/segment_node_test.go:
//
//   SIYU_URL=http://127.0.0.1:8080 SIYU_WRITE_KEY=wk_... node send.js
'use strict'

const { Analytics } = require('@segment/analytics-node')

const url = process.env.SIYU_URL
const writeKey = process.env.SIYU_WRITE_KEY
const tracks = Number(process.env.SIYU_TRACKS || 25)
if (!url || !writeKey) {
  console.error('SIYU_URL and SIYU_WRITE_KEY are required')
  process.exit(2)
}

const analytics = new Analytics({ writeKey, host: url, flushAt: 6, flushInterval: 50, maxRetries: 5 })

let sent = 0
const failures = []
let settled = 0
const done = (err) => {
  settled++
  if (err) failures.push(String(err && err.message ? err.message : err))
}
const call = (method, params) => {
  sent++
  analytics[method](params, done)
}

call('identify', { userId: 'node-u1', anonymousId: 'node-a1', traits: { name: '孙七', email: 'SQ@Example.com', plan: 'silver', address: { state: '浙江省', city: '杭州市' } } })
call('page', { userId: 'node-u1', name: 'Home', properties: { url: 'https://example.com/' } })
call('screen', { userId: 'node-u1', name: 'Cart' })
call('group', { userId: 'node-u1', groupId: 'g-node', traits: { name: 'Node Inc' } })
call('alias', { userId: 'node-u1', previousId: 'node-a2' })
call('track', { userId: 'node-u1', event: 'Order Completed', properties: { order_id: 'NODE-1', total: 66.6, currency: 'CNY', products: [{ product_id: 'p1', sku: 'S1', name: '茶', price: 33.3, quantity: 2 }] } })
for (let i = 0; i < tracks; i++) {
  call('track', { anonymousId: 'node-a1', event: 'Viewed', messageId: `node-track-${i}`, properties: { i } })
}

analytics.closeAndFlush({ timeout: 30000 }).then(() => {
  // settled counts the calls whose delivery callback ran: success or failure.
  console.log(JSON.stringify({ sent, settled, failures }))
  process.exit(failures.length || settled !== sent ? 1 : 0)
})
