// The OpenAPI document's components (see OpenAPIDocument.swift).
extension OpenAPIDocument {
    /// Security schemes, parameters, responses and schemas.
    static let components = #"""
        components:
          securitySchemes:
            bearer: {type: http, scheme: bearer}
          parameters:
            JobID:
              name: id
              in: path
              required: true
              schema: {type: integer, minimum: 1, maximum: 9223372036854775807}
          responses:
            Problem:
              description: refused; the message names the field and the rule
              content: {application/json: {schema: {$ref: "#/components/schemas/Problem"}}}
            Standby:
              description: >-
                not leading yet: another instance holds the leader lease and is still finishing, or
                this one is taking over the job store (or, for POST /execute and a rollback, the
                cluster could not be read to check the request); ask again after Retry-After seconds
              headers:
                Retry-After: {description: seconds, schema: {type: string}}
              content: {application/json: {schema: {$ref: "#/components/schemas/Problem"}}}
            Unauthorized:
              description: missing or wrong bearer token
              headers:
                WWW-Authenticate: {description: the auth scheme, schema: {type: string}}
              content: {application/json: {schema: {$ref: "#/components/schemas/Problem"}}}
          schemas:
            Forecast:
              type: object
              required: [distribution, nodes, offered, decision, target_version, kind, why, order, stages, preflight, quorum, drain, duration, maintenance, ready, lines]
              properties:
                distribution: {type: string, enum: [kubeadm, microk8s, k3s]}
                nodes:
                  type: array
                  items:
                    type: object
                    required: [name, role, kubelet, api_server, readiness, unschedulable]
                    properties:
                      name: {type: string}
                      role: {type: string, enum: [control-plane, worker]}
                      kubelet: {type: string}
                      api_server: {type: [string, "null"]}
                      readiness: {type: string}
                      unschedulable: {type: boolean}
                offered: {type: string}
                decision: {type: string}
                target_version: {type: [string, "null"]}
                kind: {type: [string, "null"], enum: [patch, minor, null]}
                why: {type: string}
                order: {type: array, items: {type: string}}
                stages:
                  type: array
                  items:
                    type: object
                    required: [stage, runs, reason]
                    properties:
                      stage: {type: string}
                      runs: {type: boolean}
                      reason: {type: string}
                preflight:
                  type: array
                  items:
                    type: object
                    required: [check, outcome, detail]
                    properties:
                      check: {type: string}
                      outcome: {type: string, enum: [passed, warning, failed]}
                      detail: {type: string}
                quorum:
                  type: array
                  items:
                    type: object
                    required: [node, passes, verdict]
                    properties:
                      node: {type: string}
                      passes: {type: boolean}
                      verdict: {type: string}
                duration:
                  description: "How long the job would take: its nodes with work left, each at the last succeeded upgrade's longest node of its kind (else --node-estimate), the workers' soaks and batches, and that job's time outside its nodes; null without a target."
                  oneOf:
                    - type: "null"
                    - type: object
                      required: [seconds, basis, nodes]
                      properties:
                        seconds: {type: number, minimum: 0}
                        basis: {type: string}
                        nodes:
                          type: array
                          description: each node with work left, in order, with its expected seconds (a worker's soak included)
                          items:
                            type: object
                            required: [name, role, seconds]
                            properties:
                              name: {type: string}
                              role: {type: string, enum: [master, control-plane, worker]}
                              seconds: {type: number, minimum: 0}
                drain:
                  description: "The drain rehearsal of every node the job would drain, in its order (null when it drains none): kubectl's rules, the budgets one node at a time, and whether each evicted pod's replacement fits on the nodes that stay schedulable (requests against allocatable, taints and tolerations, node selectors). Pre-flight's drain forecast check fails on a blocker unless accept_blockers."
                  oneOf:
                    - type: "null"
                    - type: object
                      required: [summary, nodes]
                      properties:
                        summary: {type: string}
                        nodes:
                          type: array
                          items:
                            type: object
                            required: [name, evicted, kept, notes, api_confirmation, blockers]
                            properties:
                              name: {type: string}
                              evicted: {type: integer, minimum: 0}
                              kept: {type: integer, minimum: 0}
                              notes: {type: array, items: {type: string}}
                              api_confirmation:
                                type: [string, "null"]
                                description: "how the API's dry-run evictions (dryRun=All) of the pods a budget blocks, and of the first pod under each budget, compared with the forecast; null when no pod there is under a budget"
                              blockers:
                                type: array
                                items:
                                  type: object
                                  required: [pod, budget, text]
                                  properties:
                                    pod: {type: [string, "null"]}
                                    budget: {type: [string, "null"], description: the budget the eviction would wait on}
                                    text: {type: string}
                maintenance:
                  description: "When a job dispatched now would start under the maintenance windows (--maintenance-window); null without windows. A job waits for a window with room for one node at --node-estimate; each node then starts only if its forecast fits before the window closes, else the job parks until the next."
                  oneOf:
                    - type: "null"
                    - type: object
                      required: [windows, verdict, starts_now, opens, closes, ends, windows_needed]
                      properties:
                        windows: {type: string, description: "the windows and excluded dates, as configured"}
                        verdict: {type: string}
                        starts_now: {type: boolean}
                        opens: {type: [number, "null"], description: "seconds since 1970 when the job would start; null if now or never"}
                        closes: {type: [number, "null"], description: "seconds since 1970 when that window closes"}
                        ends: {type: [number, "null"], description: "seconds since 1970 when the whole job would end, each node started only where its forecast fits before its window closes; null without a duration or if never"}
                        windows_needed: {type: [integer, "null"], minimum: 1, description: "how many windows the job would take (it parks between them)"}
                ready: {type: boolean, description: "false when a check, a quorum gate, or the maintenance windows (no window long enough) would stop a job"}
                lines: {type: array, items: {type: string}, description: the same for people, as k8s-upgrade plan prints it}
            Status:
              type: object
              required: [status]
              properties:
                status: {type: string}
            Problem:
              type: object
              required: [error, detail]
              additionalProperties: false
              properties:
                error: {type: string}
                detail: {}
            ExecuteRequest:
              type: object
              required: [target_version, kind]
              additionalProperties: false
              properties:
                target_version:
                  type: string
                  pattern: "^(0|[1-9][0-9]{0,8})\\.(0|[1-9][0-9]{0,8})\\.(0|[1-9][0-9]{0,8})(\\+k3s[1-9][0-9]{0,5})?$"
                kind: {type: string, enum: [patch, minor]}
                dry_run: {type: boolean, default: false}
                stages:
                  type: string
                  default: all
                  description: all, or a comma list of distinct stages among preflight, snapshot, containerd, repo, master, workers, postflight
                  pattern: "^ *(all|(?!.*\\b(\\w+)\\b.*,\\s*\\2\\b)(preflight|snapshot|containerd|repo|master|workers|postflight)( *, *(preflight|snapshot|containerd|repo|master|workers|postflight))*) *$"
                accept_blockers:
                  type: boolean
                  default: false
                  description: run although pre-flight's drain forecast found blockers (a budget that allows no disruption, a pod whose replacement has nowhere to go, a pod kubectl drain refuses); pre-flight then warns instead of failing, and the job meets them when it gets there
            Time:
              type: [string, "null"]
              format: date-time
            JobState:
              type: string
              enum: [queued, running, aborting, succeeded, failed, aborted, interrupted]
            ProgressStatus:
              type: string
              enum: [pending, running, succeeded, skipped, failed, aborted, interrupted, not_selected]
            JobSummary:
              allOf:
                - {$ref: "#/components/schemas/JobFields"}
              unevaluatedProperties: false
            JobFields:
              type: object
              required: [id, state, request, created_at, started_at, finished_at, updated_at, current_stage, current_node, error]
              properties:
                id: {type: integer, minimum: 1}
                state: {$ref: "#/components/schemas/JobState"}
                request:
                  type: object
                  additionalProperties: false
                  required: [target_version, kind, dry_run, stages, accept_blockers]
                  properties:
                    target_version: {type: string}
                    kind: {type: string, enum: [patch, minor]}
                    dry_run: {type: boolean}
                    stages: {type: string}
                    accept_blockers: {type: boolean}
                    rollback:
                      description: a rollback job's node and the upgrade job it undoes
                      type: object
                      required: [job, node]
                      additionalProperties: false
                      properties:
                        job: {type: integer, minimum: 1}
                        node: {type: string}
                created_at: {$ref: "#/components/schemas/Time"}
                started_at: {$ref: "#/components/schemas/Time"}
                finished_at: {$ref: "#/components/schemas/Time"}
                updated_at: {$ref: "#/components/schemas/Time"}
                current_stage: {type: [string, "null"]}
                current_node: {type: [string, "null"]}
                error: {type: [string, "null"]}
            Job:
              allOf:
                - {$ref: "#/components/schemas/JobFields"}
              type: object
              unevaluatedProperties: false
              required: [wait, stages, nodes, result, events]
              properties:
                wait:
                  oneOf:
                    - type: "null"
                    - type: object
                      additionalProperties: false
                      required: [what, reason, since, deadline, stage, node]
                      properties:
                        what: {type: string}
                        reason: {type: string}
                        since: {$ref: "#/components/schemas/Time"}
                        deadline: {$ref: "#/components/schemas/Time"}
                        stage: {type: [string, "null"]}
                        node: {type: [string, "null"]}
                stages:
                  type: array
                  items:
                    type: object
                    additionalProperties: false
                    required: [name, status, started_at, finished_at, duration_seconds, detail]
                    properties:
                      name: {type: string, enum: [preflight, snapshot, containerd, repo, master, workers, postflight]}
                      status: {$ref: "#/components/schemas/ProgressStatus"}
                      started_at: {$ref: "#/components/schemas/Time"}
                      finished_at: {$ref: "#/components/schemas/Time"}
                      duration_seconds: {type: [number, "null"]}
                      detail: {type: [string, "null"]}
                nodes:
                  type: array
                  items:
                    type: object
                    additionalProperties: false
                    required: [name, stage, status, started_at, finished_at, duration_seconds, detail]
                    properties:
                      name: {type: string}
                      stage: {type: [string, "null"]}
                      status: {$ref: "#/components/schemas/ProgressStatus"}
                      started_at: {$ref: "#/components/schemas/Time"}
                      finished_at: {$ref: "#/components/schemas/Time"}
                      duration_seconds: {type: [number, "null"]}
                      detail: {type: [string, "null"]}
                result: {}
                events:
                  type: object
                  additionalProperties: false
                  required: [items, total, next_after]
                  properties:
                    total: {type: integer, minimum: 0}
                    next_after: {type: [integer, "null"]}
                    items:
                      type: array
                      items:
                        type: object
                        additionalProperties: false
                        required: [seq, time, kind, stage, node, message, deadline]
                        properties:
                          seq: {type: integer, minimum: 1}
                          time: {$ref: "#/components/schemas/Time"}
                          kind: {type: string}
                          stage: {type: [string, "null"]}
                          node: {type: [string, "null"]}
                          message: {type: string}
                          deadline: {$ref: "#/components/schemas/Time"}
        """#
}
