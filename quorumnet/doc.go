// Package quorumnet carries the controller quorum's traffic between
// voters (issue 17): package voter's envelopes and package metarepl's
// fetches, over each voter's CONTROLLER listener.
//
// # Wire
//
// One internal request, APIKey (30000, far outside Kafka's keys, so it
// never collides with one and the broker routes it before its Kafka API
// table; it is never listed in ApiVersions), version APIVersion, with
// Kafka's framing: a size prefix, request header v1 (key, version,
// correlation id, client id) and response header v0 (correlation id),
// which is what netio parses for a key kmsg does not know. The request
// body is the sender's node id, a Channel (envelope or fetch) and opaque
// bytes; the response body an error code, an optional message and opaque
// bytes: empty for an envelope's acknowledgement, the encoded
// metarepl.FetchResponse for a fetch. The receiver (package broker,
// quorum_transport.go) answers errors with Kafka codes: Code* in this
// package. FetchHandler is the receiver's side of a fetch: bytes in,
// Replica.HandleFetch, bytes out.
//
// # Client
//
// A Client is one node's sending side: it implements voter.Transport
// (Send queues and returns; a message for a peer that is down, or whose
// queue is full, is dropped, which CASPaxos tolerates) and
// metarepl.Transport (Fetch waits for the answer until its ctx ends).
// Each peer gets two connections, one per channel, because a receiver
// handles a connection's requests one at a time and a fetch may be held
// for its long poll; each pipelines its requests by correlation id. A
// goroutine per connection redials with capped exponential backoff
// (MinBackoff doubling to MaxBackoff, reset once the peer answers); a
// fetch that gives up after it was written closes its connection so the
// peer stops holding it; a peer that leaves a request unanswered for
// IOTimeout is taken for dead. Close stops every goroutine.
//
// # Not wired yet
//
// Nothing builds a Client or registers the broker's handlers yet: the
// broker starting its voter and metadata log from controller.quorum.voters
// (the wiring's later steps in docs/architecture.md) does both. Client
// counts envelopes (Stats) but exports no metrics; there is no TLS or
// SASL on the CONTROLLER listener, as for every other request there.
//
// # Tests
//
// wire_test.go: the bodies round-trip and every malformed one is
// refused. client_test.go runs a Client against a fake peer on the netio
// std engine and raw TCP peers: delivery with the sender's id, pipelined
// fetches matched to their answers, refusals reaching the caller, an
// abandoned fetch cancelled on the peer, a peer down (fetches fail at
// once, envelopes dropped, Send never blocks) and back (reconnect), a
// silent peer found within IOTimeout, a wrong correlation id, the
// backoff's cap, and Close leaving no goroutine. broker's
// quorum_transport_test.go runs it against a real controller node.
package quorumnet
