package verifier

import (
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/attest-acme/attest-acme/evidence"
)

// The challenge-response API (docs/protocol.md §5), as Veraison's
// verification service and github.com/veraison/apiclient speak it.
const (
	// PathNewSession creates a session.
	PathNewSession = "/challenge-response/v1/newSession"
	// pathSessionPrefix prefixes a session's URI.
	pathSessionPrefix = "/challenge-response/v1/session/"
	// PathWellKnown serves the verification key and media types.
	PathWellKnown = "/.well-known/veraison/verification"
	// PathMetrics is where the Prometheus metrics are served.
	PathMetrics = "/metrics"

	mediaTypeSession   = "application/vnd.veraison.challenge-response-session+json"
	mediaTypeDiscovery = "application/vnd.veraison.discovery+json"
	mediaTypeProblem   = "application/problem+json"

	// Nonce sizes a session accepts, in bytes.
	minNonceSize = 8
	maxNonceSize = 64
	// maxEvidenceBody bounds a posted evidence body.
	maxEvidenceBody = 96 << 10
)

// Session states.
const (
	statusWaiting  = "waiting"
	statusComplete = "complete"
	statusFailed   = "failed"
)

// ServiceConfig configures a Service.
type ServiceConfig struct {
	// Verifier appraises the evidence; normally the in-process Appraiser.
	Verifier Verifier
	// MediaTypes are the evidence media types sessions accept.
	MediaTypes []string
	// Key is the EAR verification key served at the well-known endpoint.
	Key *ecdsa.PublicKey
	// Lifetime of a session; default 5 minutes.
	Lifetime time.Duration
	// MaxSessions caps the sessions waiting for evidence at once (a new
	// session beyond it gets 503), and separately the finished sessions
	// kept for GET (the oldest is dropped first); default 1024.
	MaxSessions int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives one line per appraisal; nil discards.
	Log *slog.Logger
}

// Service is the verifier's HTTP API.
type Service struct {
	cfg ServiceConfig
	jwk json.RawMessage

	mu       sync.Mutex
	sessions map[string]*session
	// waiting counts the sessions that have not had evidence yet.
	waiting int
	// finished lists finished sessions, oldest first, so that a client that
	// never DELETEs cannot fill the service up.
	finished []string
}

// session is one challenge-response session (its JSON is the session object).
type session struct {
	Nonce  []byte    `json:"nonce"`
	Expiry time.Time `json:"expiry"`
	Accept []string  `json:"accept"`
	Status string    `json:"status"`
	Result *string   `json:"result,omitempty"`

	busy bool // an appraisal is under way
}

// NewService returns the API over cfg.Verifier.
func NewService(cfg ServiceConfig) (*Service, error) {
	if cfg.Verifier == nil || cfg.Key == nil {
		return nil, errors.New("verifier service: a Verifier and its EAR key are required")
	}
	if len(cfg.MediaTypes) == 0 {
		return nil, errors.New("verifier service: no media types accepted")
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = 5 * time.Minute
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 1024
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	j, err := publicJWK(cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("verifier service: %w", err)
	}
	return &Service{cfg: cfg, jwk: j, sessions: map[string]*session{}}, nil
}

// Handler returns the HTTP handler of the API.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathNewSession, s.newSession)
	mux.HandleFunc("GET "+pathSessionPrefix+"{id}", s.getSession)
	mux.HandleFunc("POST "+pathSessionPrefix+"{id}", s.postEvidence)
	mux.HandleFunc("DELETE "+pathSessionPrefix+"{id}", s.deleteSession)
	mux.HandleFunc("GET "+PathWellKnown, s.wellKnown)
	return mux
}

func (s *Service) newSession(w http.ResponseWriter, r *http.Request) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		problem(w, http.StatusBadRequest, "query: "+err.Error())
		return
	}
	var nonce []byte
	switch {
	case q.Has("nonce") && q.Has("nonceSize"):
		problem(w, http.StatusBadRequest, "give either nonce or nonceSize, not both")
		return
	case q.Has("nonce"):
		n, err := decodeQueryNonce(q.Get("nonce"))
		if err != nil {
			problem(w, http.StatusBadRequest, "nonce: "+err.Error())
			return
		}
		nonce = n
	default:
		size := 32
		if q.Has("nonceSize") {
			v, err := strconv.Atoi(q.Get("nonceSize"))
			if err != nil {
				problem(w, http.StatusBadRequest, "nonceSize is not a number")
				return
			}
			size = v
		}
		if size < minNonceSize || size > maxNonceSize {
			problem(w, http.StatusBadRequest, fmt.Sprintf("nonceSize %d is outside %d..%d", size, minNonceSize, maxNonceSize))
			return
		}
		nonce = make([]byte, size)
		rand.Read(nonce)
	}

	id := newSessionID()
	now := s.cfg.Now()
	sess := &session{Nonce: nonce, Expiry: now.Add(s.cfg.Lifetime).UTC(), Accept: s.cfg.MediaTypes, Status: statusWaiting}
	s.mu.Lock()
	if s.waiting >= s.cfg.MaxSessions {
		s.sweepLocked(now)
	}
	if s.waiting >= s.cfg.MaxSessions {
		s.mu.Unlock()
		w.Header().Set("Retry-After", "1")
		problem(w, http.StatusServiceUnavailable, fmt.Sprintf("too many sessions waiting for evidence (%d)", s.cfg.MaxSessions))
		return
	}
	s.sessions[id] = sess
	s.waiting++
	body, _ := json.Marshal(sess)
	s.mu.Unlock()

	w.Header().Set("Location", pathSessionPrefix+id)
	w.Header().Set("Content-Type", mediaTypeSession)
	w.WriteHeader(http.StatusCreated)
	w.Write(body)
}

// decodeQueryNonce accepts base64url with or without padding, and standard
// base64 (apiclient sends padded base64url).
func decodeQueryNonce(s string) ([]byte, error) {
	t := strings.TrimRight(s, "=")
	n, err := base64.RawURLEncoding.DecodeString(t)
	if err != nil {
		if n, err = base64.RawStdEncoding.DecodeString(t); err != nil {
			return nil, errors.New("not base64url")
		}
	}
	if len(n) < minNonceSize || len(n) > maxNonceSize {
		return nil, fmt.Errorf("%d bytes, want %d..%d", len(n), minNonceSize, maxNonceSize)
	}
	return n, nil
}

func newSessionID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// sweepLocked drops expired sessions.
func (s *Service) sweepLocked(now time.Time) {
	for id, sess := range s.sessions {
		if now.After(sess.Expiry) && !sess.busy {
			s.removeLocked(id, sess)
		}
	}
}

// removeLocked forgets a session.
func (s *Service) removeLocked(id string, sess *session) {
	delete(s.sessions, id)
	if sess.Status == statusWaiting {
		s.waiting--
	}
}

// finishLocked moves a session from waiting to finished, dropping the oldest
// finished sessions beyond the cap.
func (s *Service) finishLocked(id string) {
	s.waiting--
	s.finished = append(s.finished, id)
	for len(s.finished) > s.cfg.MaxSessions {
		old := s.finished[0]
		s.finished = s.finished[1:]
		if sess, ok := s.sessions[old]; ok && sess.Status != statusWaiting {
			delete(s.sessions, old)
		}
	}
}

// lookup returns a live session; expired ones are removed.
func (s *Service) lookupLocked(id string) *session {
	sess, ok := s.sessions[id]
	if !ok {
		return nil
	}
	if s.cfg.Now().After(sess.Expiry) && !sess.busy {
		s.removeLocked(id, sess)
		return nil
	}
	return sess
}

func (s *Service) getSession(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	sess := s.lookupLocked(r.PathValue("id"))
	var body []byte
	if sess != nil {
		body, _ = json.Marshal(sess)
	}
	s.mu.Unlock()
	if sess == nil {
		problem(w, http.StatusNotFound, "no such session (never created, expired or deleted)")
		return
	}
	w.Header().Set("Content-Type", mediaTypeSession)
	w.Write(body)
}

func (s *Service) deleteSession(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	sess, ok := s.sessions[r.PathValue("id")]
	busy := ok && sess.busy
	if ok && !busy {
		s.removeLocked(r.PathValue("id"), sess)
	}
	s.mu.Unlock()
	switch {
	case !ok:
		problem(w, http.StatusNotFound, "no such session")
		return
	case busy:
		problem(w, http.StatusConflict, "the session's evidence is being appraised")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) postEvidence(w http.ResponseWriter, r *http.Request) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		problem(w, http.StatusUnsupportedMediaType, "Content-Type is missing or malformed")
		return
	}
	// Media types with parameters (PSA, CCA) are compared whole.
	if !slices.Contains(s.cfg.MediaTypes, mt) {
		mt = r.Header.Get("Content-Type")
	}
	if !slices.Contains(s.cfg.MediaTypes, mt) {
		problem(w, http.StatusUnsupportedMediaType, fmt.Sprintf("media type %q is not accepted (accepted: %s)", mt, strings.Join(s.cfg.MediaTypes, ", ")))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEvidenceBody))
	if err != nil {
		problem(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("evidence is over the limit of %d bytes", maxEvidenceBody))
		return
	}

	id := r.PathValue("id")
	s.mu.Lock()
	sess := s.lookupLocked(id)
	switch {
	case sess == nil:
		s.mu.Unlock()
		problem(w, http.StatusNotFound, "no such session (never created, expired or deleted)")
		return
	case sess.Status != statusWaiting || sess.busy:
		s.mu.Unlock()
		problem(w, http.StatusConflict, "the session already has evidence")
		return
	}
	sess.busy = true
	nonce := sess.Nonce
	s.mu.Unlock()

	start := time.Now()
	ear, err := s.cfg.Verifier.Appraise(r.Context(), evidence.Evidence{MediaType: mt, Data: body}, nonce)
	elapsed := time.Since(start)

	// The session object does not echo the evidence back: no client needs
	// it, and it would double what every answer carries (docs/protocol.md §5).
	s.mu.Lock()
	sess.busy = false
	s.finishLocked(id)
	if err != nil {
		sess.Status = statusFailed
	} else {
		sess.Status = statusComplete
		tok := string(ear)
		sess.Result = &tok
	}
	out, _ := json.Marshal(sess)
	s.mu.Unlock()

	if err != nil {
		s.cfg.Log.Warn("appraisal failed", "session", id, "media_type", mt, "error", err, "duration", elapsed)
		status := http.StatusInternalServerError
		if IsRejected(err) {
			status = http.StatusBadRequest
		}
		problem(w, status, err.Error())
		return
	}
	s.cfg.Log.Info("appraisal", "session", id, "media_type", mt, "duration", elapsed)
	w.Header().Set("Content-Type", mediaTypeSession)
	w.Write(out)
}

// discovery is the well-known document, in Veraison's shape.
type discovery struct {
	Key          json.RawMessage   `json:"ear-verification-key"`
	MediaTypes   []string          `json:"media-types"`
	Version      string            `json:"version"`
	ServiceState string            `json:"service-state"`
	Endpoints    map[string]string `json:"api-endpoints"`
}

func (s *Service) wellKnown(w http.ResponseWriter, _ *http.Request) {
	b, _ := json.Marshal(discovery{
		Key:          s.jwk,
		MediaTypes:   s.cfg.MediaTypes,
		Version:      VerifierBuild,
		ServiceState: "READY",
		Endpoints:    map[string]string{"newChallengeResponseSession": PathNewSession},
	})
	w.Header().Set("Content-Type", mediaTypeDiscovery)
	w.Write(b)
}

// problem writes an RFC 9457 problem document.
func problem(w http.ResponseWriter, status int, detail string) {
	b, _ := json.Marshal(map[string]any{"type": "about:blank", "title": http.StatusText(status), "status": status, "detail": detail})
	w.Header().Set("Content-Type", mediaTypeProblem)
	w.WriteHeader(status)
	w.Write(b)
}
