package acmeclient

import (
	"encoding/json"
	"time"
)

// Stage names a step of the client's work, as progress events report it.
type Stage string

// The stages, in the order an issuance goes through them.
const (
	// StageAccount: the ACME account was registered or loaded.
	StageAccount Stage = "account"
	// StageOrder: the order was created (newOrder).
	StageOrder Stage = "order"
	// StageHTTP01: a dns identifier was validated with http-01.
	StageHTTP01 Stage = "http-01"
	// StageEvidence: the kc was made and the platform attested it.
	StageEvidence Stage = "evidence"
	// StageChallenge: the device-attest-01 answer was posted and checked
	// by the CA.
	StageChallenge Stage = "challenge"
	// StageFinalize: the CSR was sent and the certificate downloaded.
	StageFinalize Stage = "finalize"
	// StageStore: certificate, key, EAR and resource file were written.
	StageStore Stage = "store"
	// StageHook: the command after an issuance ran.
	StageHook Stage = "hook"
	// StageCheck: the stored certificate was checked for renewal.
	StageCheck Stage = "check"
	// StageWait: the daemon sleeps until the next renewal.
	StageWait Stage = "wait"
	// StageRetry: the daemon backs off after a failure.
	StageRetry Stage = "retry"
)

// Event reports one finished step (or one failed step, with Err set).
type Event struct {
	// Time is when the step ended.
	Time time.Time
	// Stage is the step.
	Stage Stage
	// Duration is how long the step took; zero for an instant one.
	Duration time.Duration
	// Message says what happened, for a person.
	Message string
	// Err is the failure, nil when the step succeeded.
	Err error
	// Fields are machine-readable details: "account", "order", "nonce",
	// "evidence_sha256", "serial", "not_after", "cert", ...
	Fields map[string]string
}

// MarshalJSON writes the event as one JSON object:
//
//	{"time": RFC 3339, "stage": "...", "status": "ok"|"error",
//	 "duration_ms": n, "message": "...", "error": "...", "fields": {...}}
func (e Event) MarshalJSON() ([]byte, error) {
	out := struct {
		Time       time.Time         `json:"time"`
		Stage      Stage             `json:"stage"`
		Status     string            `json:"status"`
		DurationMS float64           `json:"duration_ms"`
		Message    string            `json:"message,omitempty"`
		Error      string            `json:"error,omitempty"`
		Fields     map[string]string `json:"fields,omitempty"`
	}{Time: e.Time, Stage: e.Stage, Status: "ok", DurationMS: float64(e.Duration.Microseconds()) / 1000, Message: e.Message, Fields: e.Fields}
	if e.Err != nil {
		out.Status, out.Error = "error", e.Err.Error()
	}
	return json.Marshal(out)
}
