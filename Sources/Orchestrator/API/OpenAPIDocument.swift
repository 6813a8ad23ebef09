/// The OpenAPI 3.1 document served at `/openapi.yaml`. A test walks every
/// route and checks each answer against it, and schemathesis fuzzes the
/// server with it, so it stays true to the code.
enum OpenAPIDocument {
    static let yaml = paths + "\n" + components

    /// The document up to its paths, each route and its answers.
    static let paths = #"""
        openapi: 3.1.0
        info:
          title: k8s-upgrade orchestrator
          version: 0.1.0
          description: >-
            Runs one Kubernetes upgrade job at a time through its stages (preflight, snapshot,
            containerd, repo, master, workers, postflight). Every route but /healthz and /readyz
            needs the bearer token. Errors are {"error": "...", "detail": ...}.
        security:
          - bearer: []
        paths:
          /healthz:
            get:
              operationId: healthz
              summary: Liveness; always open.
              security: []
              responses:
                "200": {description: alive, content: {application/json: {schema: {$ref: "#/components/schemas/Status"}}}}
          /readyz:
            get:
              operationId: readyz
              summary: Readiness; this process leads (holds the leader lease in a pod, has taken over the job store) and the store answers. Always open.
              security: []
              responses:
                "200": {description: ready, content: {application/json: {schema: {$ref: "#/components/schemas/Status"}}}}
                "503": {$ref: "#/components/responses/Problem"}
          /metrics:
            get:
              operationId: metrics
              summary: The service's own metrics in the Prometheus text format.
              responses:
                "200": {description: metrics, content: {text/plain: {schema: {type: string}}}}
                "401": {$ref: "#/components/responses/Unauthorized"}
          /openapi.yaml:
            get:
              operationId: openapi
              summary: This document.
              responses:
                "200": {description: the document, content: {application/yaml: {schema: {type: object}}}}
                "401": {$ref: "#/components/responses/Unauthorized"}
          /execute:
            post:
              operationId: execute
              summary: Start an upgrade job (one at a time).
              description: >-
                The request is judged against the live cluster before anything is queued: kind must match
                the target (patch stays in the oldest minor running, minor is exactly the next one), the
                version-skew rules must hold, and a minor needs the server's --allow-minor and
                --minor-min-patch. A cluster already at the target answers 200 with nothing to do; a
                request that breaks a rule answers 422; a cluster that cannot be read answers 503.
              requestBody:
                required: true
                content:
                  application/json:
                    schema: {$ref: "#/components/schemas/ExecuteRequest"}
              responses:
                "202":
                  description: queued
                  headers:
                    Location: {description: the job's URL, schema: {type: string}}
                  content: {application/json: {schema: {$ref: "#/components/schemas/JobSummary"}}}
                "200":
                  description: nothing to do, nothing queued
                  content:
                    application/json:
                      schema:
                        type: object
                        required: [outcome, reason]
                        additionalProperties: false
                        properties:
                          outcome: {type: string, enum: [nothing_to_do]}
                          reason: {type: string}
                "400": {$ref: "#/components/responses/Problem"}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "409": {$ref: "#/components/responses/Problem"}
                "413": {$ref: "#/components/responses/Problem"}
                "415": {$ref: "#/components/responses/Problem"}
                "422": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Standby"}
          /jobs:
            get:
              operationId: listJobs
              summary: Jobs, newest first.
              parameters:
                - {name: limit, in: query, required: false, schema: {type: integer, minimum: 1, maximum: 500, default: 50}}
              responses:
                "200":
                  description: jobs
                  content:
                    application/json:
                      schema:
                        type: object
                        required: [jobs]
                        additionalProperties: false
                        properties:
                          jobs: {type: array, items: {$ref: "#/components/schemas/JobSummary"}}
                "400": {$ref: "#/components/responses/Problem"}
                "401": {$ref: "#/components/responses/Unauthorized"}
          /jobs/{id}:
            parameters:
              - {$ref: "#/components/parameters/JobID"}
            get:
              operationId: getJob
              summary: One job, with a page of its events.
              description: >-
                Asked for as text/html (a browser's Accept), the answer is the job's status page: its
                stages, nodes, current wait with a countdown, snapshot and result, and its last 500
                events, which then follow live; a browser that is not signed in (GET /, with the API
                token) is sent to the sign-in form.
              parameters:
                - {name: events_after, in: query, required: false, schema: {type: integer, minimum: 0, maximum: 2147483647, default: 0}}
                - {name: events_limit, in: query, required: false, schema: {type: integer, minimum: 1, maximum: 1000, default: 100}}
              responses:
                "200":
                  description: the job
                  content:
                    application/json: {schema: {$ref: "#/components/schemas/Job"}}
                    text/html: {schema: {type: string}}
                "400": {$ref: "#/components/responses/Problem"}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "404": {$ref: "#/components/responses/Problem"}
            delete:
              operationId: abortJob
              summary: Abort; a running job stops at its next safe point. Repeating it is harmless.
              description: >-
                Aborting does not delete: the job stays readable at GET /jobs/{id} as history.
              responses:
                "202": {description: aborted or aborting, content: {application/json: {schema: {$ref: "#/components/schemas/JobSummary"}}}}
                "400": {$ref: "#/components/responses/Problem"}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "404": {$ref: "#/components/responses/Problem"}
                "409": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Standby"}
          /jobs/{id}/resume:
            parameters:
              - {$ref: "#/components/parameters/JobID"}
            post:
              operationId: resumeJob
              summary: Queue a failed, aborted or interrupted job again; it continues from live state.
              responses:
                "202": {description: queued again, content: {application/json: {schema: {$ref: "#/components/schemas/JobSummary"}}}}
                "400": {$ref: "#/components/responses/Problem"}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "404": {$ref: "#/components/responses/Problem"}
                "409": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Standby"}
          /jobs/{id}/events:
            parameters:
              - {$ref: "#/components/parameters/JobID"}
            get:
              operationId: followJobEvents
              summary: A job's events as server-sent events; with follow=true, as they are written.
              description: >-
                text/event-stream. Each event is a message whose id is its sequence number and whose
                data is the event as in GET /jobs/{id} (JobEvent); a message of type job carries the
                job's state without its events and updated_at (stages, nodes, the current wait, the
                result) whenever it reads differently; a message of type end says the job will write no more, and the stream ends.
                Without follow the stream ends after what is stored. A client that reconnects sends
                Last-Event-ID (EventSource does) and gets what came after it. A comment line every
                15 s keeps an idle stream open.
              parameters:
                - name: follow
                  in: query
                  required: false
                  description: keep the stream open and send events as they are written, until the job ends
                  schema: {type: string, enum: ["true", "false"], default: "false"}
                - name: after
                  in: query
                  required: false
                  description: the sequence number to resume after, for clients that cannot send Last-Event-ID
                  schema: {type: integer, minimum: 0, maximum: 2147483647}
                - name: Last-Event-ID
                  in: header
                  required: false
                  description: the sequence number to resume after (it wins over after)
                  schema: {type: string, pattern: "^[0-9]{1,10}$"}
              responses:
                "200":
                  description: the stream
                  content:
                    text/event-stream:
                      schema: {type: string}
                "400": {$ref: "#/components/responses/Problem"}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "404": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Standby"}
          /jobs/{id}/rollback:
            parameters:
              - {$ref: "#/components/parameters/JobID"}
            post:
              operationId: rollbackNode
              summary: Queue a rollback job that takes one node of job {id} back to its release before that job.
              description: >-
                The release comes from the job's report (the node's version before its first run). The
                rollback is a job of its own: the worker is cordoned and drained, the distribution's
                rollback runs on it (kubeadm: the older packages with apt's --allow-downgrades, held
                again; MicroK8s: snap revert; K3s: the binary the upgrade kept), the kubelet must report
                the older release, and the worker is uncordoned unless someone else had cordoned it. It
                does not wait for the halt-on-alert gate and does not soak. A control plane goes back
                through the job's datastore snapshot: on a kubeadm cluster with one control plane and
                confirm_restore true, the snapshot is checked, the static pods stopped, etcd restored
                from it (the old data folder kept), the older packages installed and held, kubeadm's
                backup of the older manifests put back and the kubelet restarted; on a single MicroK8s
                control plane, the snap reverted, then microk8s dbctl restore of the job's backup; on a
                single K3s server, k3s stopped, the kept binary put back, the SQLite copy or etcd
                snapshot restored (k3s server --cluster-reset), k3s started. Every change since the
                snapshot is lost (on MicroK8s, treat it as lost: whether the restore also removes later
                keys is not documented), and workers newer than the older release must go back first:
                while one runs a newer kubelet, the restore answers 422 naming each, and nothing is
                queued. Without confirm_restore, or with several control planes (the answer then lists
                the exact steps with the job's values), it answers 422. So do a job that is still active
                or interrupted, a dry run, a rollback, or a node the job did not change.
              requestBody:
                required: true
                content:
                  application/json:
                    schema:
                      type: object
                      required: [node]
                      additionalProperties: false
                      properties:
                        node:
                          type: string
                          description: the node, a DNS-1123 subdomain
                          maxLength: 253
                          pattern: "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$"
                        dry_run: {type: boolean, default: false}
                        confirm_restore:
                          type: boolean
                          default: false
                          description: a control plane's rollback restores the job's snapshot, losing every change since
              responses:
                "202":
                  description: the rollback job, queued
                  headers:
                    Location: {description: the rollback job's URL, schema: {type: string}}
                  content: {application/json: {schema: {$ref: "#/components/schemas/JobSummary"}}}
                "400": {$ref: "#/components/responses/Problem"}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "404": {$ref: "#/components/responses/Problem"}
                "409": {$ref: "#/components/responses/Problem"}
                "413": {$ref: "#/components/responses/Problem"}
                "415": {$ref: "#/components/responses/Problem"}
                "422": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Standby"}
          /plan:
            get:
              operationId: plan
              summary: What a job would do, read from live state; nothing is changed.
              description: >-
                The running versions per node, what the package source offers, the detector's decision,
                the target (the one asked for, else the decision's) and why, the node order with each
                node's step, the stages that would run or be skipped and why, the pre-flight verdicts
                (holds read, not set), the drain rehearsal of every node the job would drain (the pods
                evicted and left, the budgets, whether each replacement has room elsewhere), the quorum
                gate before each control plane and the maintenance windows. A target that is a
                minor while the server does not allow minors answers 422; a cluster that cannot be read, 503.
              parameters:
                - name: target
                  in: query
                  required: false
                  schema: {type: string, pattern: "^(0|[1-9][0-9]{0,8})\\.(0|[1-9][0-9]{0,8})\\.(0|[1-9][0-9]{0,8})(\\+k3s[1-9][0-9]{0,5})?$"}
                - name: accept_blockers
                  in: query
                  required: false
                  description: judge the drain forecast's blockers as accepted (a warning, not a failed check), as a job with accept_blockers would
                  schema: {type: string, enum: ["true", "false"], default: "false"}
              responses:
                "200": {description: the forecast, content: {application/json: {schema: {$ref: "#/components/schemas/Forecast"}}}}
                "400": {$ref: "#/components/responses/Problem"}
                "401": {$ref: "#/components/responses/Unauthorized"}
                "422": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
        """#
}
