package runtime

import (
	"errors"
	"fmt"
)

// stageError is a failure of one record in one stage of Kafka Connect's
// pipeline, carrying what Kafka's dead letter queue headers name: the
// stage (Kafka's Stage enum), the class that failed and the exception
// class a Java worker would report.
type stageError struct {
	stage    string // KEY_CONVERTER, VALUE_CONVERTER, TRANSFORMATION, TASK_PUT, ...
	class    string // the converter's, transform's or connector's class
	excClass string
	err      error
}

func (e *stageError) Error() string {
	return fmt.Sprintf("%s (%s %s): %v", stageText[e.stage], e.stage, e.class, e.err)
}

func (e *stageError) Unwrap() error { return e.err }

var stageText = map[string]string{
	"KEY_CONVERTER":   "the key converter failed",
	"VALUE_CONVERTER": "the value converter failed",
	"TRANSFORMATION":  "a transform failed",
	"TASK_PUT":        "the sink task could not write the record",
}

const (
	dataException    = "org.apache.kafka.connect.errors.DataException"
	connectException = "org.apache.kafka.connect.errors.ConnectException"
)

// stageOf describes err for the dead letter queue's headers.
func stageOf(err error) (stage, class, excClass, message string) {
	var se *stageError
	if errors.As(err, &se) {
		return se.stage, se.class, se.excClass, se.err.Error()
	}
	return "TASK_PUT", "", connectException, err.Error()
}
