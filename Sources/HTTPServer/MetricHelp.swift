/// The `# HELP` text of every metric family the daemon exports, in one place, for `PrometheusFactory`: the
/// libraries record through swift-metrics, which carries names and labels but no help. A family missing here
/// is exported without HELP, which `promtool check metrics` (MetricsLintTests) reports.
///
/// Families that describe one model (Triton's `nv_inference_*` are the model) are made by `ServingMetrics`,
/// which puts its `labels` (e.g. `model`) on every one of them.
enum MetricHelp {
    static func text(for family: String) -> String {
        texts[family] ?? ""
    }

    private static let texts: [String: String] = [
        // HTTP (HTTPMetrics)
        "avmae_requests_total": "HTTP requests answered, by route and status code (499: the client left first).",
        "avmae_request_duration_seconds": "Time from a request's complete body to its answer, by route.",
        "avmae_inflight_requests": "HTTP requests received and not yet answered.",
        "avmae_request_body_bytes": "Size of the bodies uploaded to /v1/classify and /v1/embed.",
        // One model's serving core (ServingMetrics)
        "avmae_decode_duration_seconds": "Time to decode one clip into model windows.",
        "avmae_queue_wait_seconds": "Time a request's rows waited in the batch queue before the model took them.",
        "avmae_inference_duration_seconds": "Time of one model call (one batch).",
        "avmae_batch_size": "Rows (clip windows x crops) per model call.",
        "avmae_queue_depth": "Rows waiting for the model.",
        "avmae_queue_estimated_seconds":
            "Model work queued, in seconds at the learned cost per row; admission compares it with deadlines.",
        "avmae_model_ready": "1 while the model is loaded, warmed up and serving, else 0.",
        "avmae_rejected_total": "Requests answered 503 without a result, by reason: queue_full, not_ready, or "
            + "deadline (timeout_ms or request_timeout_seconds passed in decode, queue or inference).",
        "avmae_client_disconnects_total": "Requests whose client closed the connection before the answer, by "
            + "where the work was: decode and queue work is dropped, inference work finishes its batch.",
        // The daemon and the executable
        "avmae_model_info": "The model bundle, as labels: 1 while it serves, 0 once a reload replaced it.",
        "avmae_model_reloads_total": "Model bundle reloads (SIGHUP), by result.",
        "avmae_compute_info": "The compute engine, BLAS kernel and CPU features in use, as labels; always 1.",
        "avmae_decode_worker_failures_total":
            "Clips on which a decode worker process failed (crashed, hung or hit a limit), by reason.",
        // The standard process metrics (ProcessMetrics)
        "process_resident_memory_bytes": "Resident memory size in bytes.",
        "process_virtual_memory_bytes": "Virtual memory size in bytes.",
        "process_open_fds": "Number of open file descriptors.",
        "process_max_fds": "Maximum number of open file descriptors.",
        "process_start_time_seconds": "Start time of the process since unix epoch in seconds.",
        "process_cpu_seconds_total": "Total user and system CPU time spent in seconds.",
    ]
}
