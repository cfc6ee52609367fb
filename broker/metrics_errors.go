package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// countErrors counts the error codes of a response for
// sluice_request_errors_total: every code its API's registration extracts
// (request-level, and per topic, partition or group). Fetch counts its own
// where its response is built, since it is not a kmsg value.
func (m *metrics) countErrors(a *api, resp kmsg.Response) {
	key := a.key.Int16()
	a.errorCodes(resp, func(code int16) { m.requestError(key, code) })
}
