package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// Error is an error with the HTTP status it answers with. connect/rest writes
// it as ErrorMessage{ErrorCode: Code, Message: Message}. The herder returns
// these for anything a client should see as other than 500.
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an Error with the given HTTP status.
func Errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// BadRequest is a 400: the request itself is wrong.
func BadRequest(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, format, args...)
}

// NotFound is a 404.
func NotFound(format string, args ...any) *Error {
	return Errorf(http.StatusNotFound, format, args...)
}

// Conflict is a 409: clients retry these.
func Conflict(format string, args ...any) *Error {
	return Errorf(http.StatusConflict, format, args...)
}

// Internal is a 500.
func Internal(format string, args ...any) *Error {
	return Errorf(http.StatusInternalServerError, format, args...)
}

// ConnectorNotFound is the 404 for an unknown connector.
func ConnectorNotFound(name string) *Error { return NotFound("Connector %s not found", name) }

// TaskNotFound is the 404 for an unknown task of a known connector.
func TaskNotFound(id ConnectorTaskID) *Error { return NotFound("Task %s not found", id) }

// ConnectorExists is the 409 for POST /connectors with a name already in use.
func ConnectorExists(name string) *Error { return Conflict("Connector %s already exists", name) }

// NotStopped is the 400 for altering or resetting the offsets of a connector
// that is not STOPPED.
func NotStopped(name string) *Error {
	return BadRequest("Connectors must be in the STOPPED state before their offsets can be modified. "+
		"This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/%s/stop' endpoint", name)
}

// The 409 answers of a distributed cluster in flux. Clients retry on them.
var (
	// ErrNoLeader: a follower got a write but knows no leader to forward it to.
	ErrNoLeader = Conflict("Cannot complete request momentarily due to no known leader URL, likely because a rebalance was underway.")
	// ErrForwardLoop: a forwarded request reached a worker that is not the
	// leader either (two hops spent).
	ErrForwardLoop = Conflict("Cannot complete request because of a conflicting operation (e.g. worker rebalance)")
	// ErrStaleConfig: the herder's view of the configs was behind the config
	// topic; the request can be retried once it has caught up.
	ErrStaleConfig = Conflict("Cannot complete request momentarily due to stale configuration (typically caused by a concurrent config change)")
)

// ErrTimedOut is the 500 for a request the herder did not finish within the
// REST request timeout.
var ErrTimedOut = Internal("Request timed out")

// NotLeaderError is returned by a follower's herder for a request only the
// leader may perform. connect/rest forwards the request to LeaderURL (the
// leader's advertised REST base URL, such as "http://10.0.0.2:8083"); an empty
// LeaderURL means no leader is known and answers ErrNoLeader.
type NotLeaderError struct {
	LeaderURL string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderURL == "" {
		return "this worker is not the leader and no leader is known"
	}
	return "this worker is not the leader; the leader is " + e.LeaderURL
}

// AsError maps any error to the Error it answers with: an *Error (wrapped or
// not) keeps its status, a context deadline is ErrTimedOut, and anything else
// is a 500 with the error's text.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ErrTimedOut
	}
	var nl *NotLeaderError
	if errors.As(err, &nl) && nl.LeaderURL == "" {
		return ErrNoLeader
	}
	return Internal("%s", err.Error())
}
