// Package acmeclient is attest-acme's ACME client (docs/protocol.md §1): it
// gets a certificate for a permanent-identifier by answering the CA's
// device-attest-01 challenge with fresh platform evidence in the "cmw"
// format, and keeps it renewed.
//
// What it owns:
//
//   - client.go: Config, Client and Obtain: certificate key, account, order,
//     challenge answers, finalize, checks on what the CA issued;
//   - account.go: registering or reusing the ACME account, stored as lego
//     stores it;
//   - jws.go: the one signed POST lego does not export (newOrder with a
//     permanent-identifier, the challenge answer, and POST-as-GET polling
//     that can see Retry-After);
//   - poll.go: bounded polling that honours Retry-After;
//   - transport.go: the HTTP transport (context, body limit, TLS roots) and
//     the classification of connection and TLS failures;
//   - problem.go: ACME problems and the other errors a caller maps to
//     messages and exit codes;
//   - keys.go: certificate key types, PEM and the CSR;
//   - ear.go: the EAR the certificate carries in its id-pe-cmw extension;
//   - storage.go: the on-disk layout under one directory, with certificate,
//     key, EAR and resource file replaced together (versioned directory and
//     symlink swap);
//   - renew.go, run.go, hook.go: renewal when due, the renewal daemon, and
//     the command run after each issuance;
//   - event.go: progress events for a terminal or a script.
//
// Orders may add dns identifiers, validated with http-01 by lego's solver.
// step-ca v0.30.2 accepts such a mixed order and validates both kinds of
// authorization, but for an order with a permanent-identifier it signs with
// its attested-leaf template, which puts the permanent identifier alone in
// the certificate: the DNS names are dropped. The client then refuses the
// certificate (nothing is written) rather than store one that lacks names
// it asked for.
//
// The ACME plumbing is github.com/go-acme/lego/v4 (directory, account,
// key authorization, http-01 solver, finalize, certificate download); this is
// the only package of the project that imports lego. It imports evidence and
// challenge of this project and nothing else of it: no caplugin, no verifier,
// no TPM or configfs code (the caller passes an evidence.Attester in).
package acmeclient
