CREATE TABLE public.admin_tokens (
    id bigint NOT NULL,
    value_sha256 bytea NOT NULL,
    description text DEFAULT ''::text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    source text DEFAULT 'cli'::text NOT NULL,
    last_used_at timestamp with time zone,
    CONSTRAINT admin_tokens_source_check CHECK ((source = ANY (ARRAY['env'::text, 'cli'::text, 'generated'::text])))
);

CREATE SEQUENCE public.admin_tokens_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.admin_tokens_id_seq OWNED BY public.admin_tokens.id;

CREATE TABLE public.execution_log_chunks (
    id bigint NOT NULL,
    job_id bigint NOT NULL,
    attempt integer NOT NULL,
    entry_idx integer NOT NULL,
    seq integer NOT NULL,
    "out" text NOT NULL,
    replaces boolean DEFAULT false NOT NULL
);

CREATE SEQUENCE public.execution_log_cursor_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.execution_log_cursor_seq OWNED BY public.execution_log_chunks.id;

CREATE TABLE public.execution_log_entries (
    job_id bigint NOT NULL,
    attempt integer NOT NULL,
    idx integer NOT NULL,
    key text NOT NULL,
    command jsonb DEFAULT '[]'::jsonb NOT NULL,
    start_time text DEFAULT ''::text NOT NULL,
    exit_code integer,
    duration_ms integer,
    change_id bigint DEFAULT nextval('public.execution_log_cursor_seq'::regclass) NOT NULL,
    client_key text,
    CONSTRAINT execution_log_entries_idx_check CHECK ((idx >= 1))
);

CREATE TABLE public.executor_heartbeats (
    id integer NOT NULL,
    hostname text NOT NULL,
    queue_name text,
    queue_names text[],
    os text DEFAULT ''::text NOT NULL,
    architecture text DEFAULT ''::text NOT NULL,
    docker_version text DEFAULT ''::text NOT NULL,
    executor_version text DEFAULT ''::text NOT NULL,
    git_version text DEFAULT ''::text NOT NULL,
    ignite_version text DEFAULT ''::text NOT NULL,
    src_cli_version text DEFAULT ''::text NOT NULL,
    prometheus_metrics text,
    first_seen_at timestamp with time zone DEFAULT now() NOT NULL,
    last_seen_at timestamp with time zone DEFAULT now() NOT NULL,
    runtime text DEFAULT ''::text NOT NULL,
    CONSTRAINT executor_heartbeats_one_queue_field CHECK ((num_nonnulls(queue_name, queue_names) = 1))
);

CREATE SEQUENCE public.executor_heartbeats_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.executor_heartbeats_id_seq OWNED BY public.executor_heartbeats.id;

CREATE TABLE public.executor_secrets (
    id bigint NOT NULL,
    value_sha256 bytea NOT NULL,
    source text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone,
    CONSTRAINT executor_secrets_source_check CHECK ((source = ANY (ARRAY['config'::text, 'rotated'::text])))
);

CREATE SEQUENCE public.executor_secrets_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.executor_secrets_id_seq OWNED BY public.executor_secrets.id;

CREATE TABLE public.job_attempts (
    job_id bigint NOT NULL,
    attempt integer NOT NULL,
    executor_hostname text NOT NULL,
    started_at timestamp with time zone NOT NULL,
    finished_at timestamp with time zone,
    outcome text,
    reset_reason text,
    CONSTRAINT job_attempts_attempt_check CHECK ((attempt >= 1)),
    CONSTRAINT job_attempts_outcome_check CHECK ((outcome = ANY (ARRAY['completed'::text, 'errored'::text, 'failed'::text, 'canceled'::text, 'reset'::text])))
);

CREATE TABLE public.job_tokens (
    id bigint NOT NULL,
    value_sha256 bytea NOT NULL,
    job_id bigint NOT NULL,
    attempt integer NOT NULL,
    queue text NOT NULL,
    repository_name text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE SEQUENCE public.job_tokens_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.job_tokens_id_seq OWNED BY public.job_tokens.id;

CREATE TABLE public.jobs (
    id bigint NOT NULL,
    queue text NOT NULL,
    state text DEFAULT 'queued'::text NOT NULL,
    payload jsonb NOT NULL,
    repository_name text DEFAULT ''::text NOT NULL,
    priority integer DEFAULT 0 NOT NULL,
    failure_message text,
    queued_at timestamp with time zone DEFAULT now() NOT NULL,
    started_at timestamp with time zone,
    last_heartbeat_at timestamp with time zone,
    finished_at timestamp with time zone,
    process_after timestamp with time zone,
    num_resets integer DEFAULT 0 NOT NULL,
    num_failures integer DEFAULT 0 NOT NULL,
    attempt integer DEFAULT 0 NOT NULL,
    worker_hostname text,
    cancel boolean DEFAULT false NOT NULL,
    retry_of bigint,
    CONSTRAINT jobs_state_check CHECK ((state = ANY (ARRAY['queued'::text, 'processing'::text, 'completed'::text, 'errored'::text, 'failed'::text, 'canceled'::text])))
);

CREATE SEQUENCE public.jobs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.jobs_id_seq OWNED BY public.jobs.id;

CREATE TABLE public.repositories (
    name text NOT NULL,
    source text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.sandfleet_migration (
    name character varying(255) NOT NULL,
    "timestamp" character varying(255) NOT NULL
);

CREATE TABLE public.sandfleet_migration_lock (
    id character varying(255) NOT NULL,
    is_locked integer DEFAULT 0 NOT NULL
);

CREATE TABLE public.ui_sessions (
    id bigint NOT NULL,
    value_sha256 bytea NOT NULL,
    csrf_token text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    admin_token_id bigint
);

CREATE SEQUENCE public.ui_sessions_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.ui_sessions_id_seq OWNED BY public.ui_sessions.id;

ALTER TABLE ONLY public.admin_tokens ALTER COLUMN id SET DEFAULT nextval('public.admin_tokens_id_seq'::regclass);

ALTER TABLE ONLY public.execution_log_chunks ALTER COLUMN id SET DEFAULT nextval('public.execution_log_cursor_seq'::regclass);

ALTER TABLE ONLY public.executor_heartbeats ALTER COLUMN id SET DEFAULT nextval('public.executor_heartbeats_id_seq'::regclass);

ALTER TABLE ONLY public.executor_secrets ALTER COLUMN id SET DEFAULT nextval('public.executor_secrets_id_seq'::regclass);

ALTER TABLE ONLY public.job_tokens ALTER COLUMN id SET DEFAULT nextval('public.job_tokens_id_seq'::regclass);

ALTER TABLE ONLY public.jobs ALTER COLUMN id SET DEFAULT nextval('public.jobs_id_seq'::regclass);

ALTER TABLE ONLY public.ui_sessions ALTER COLUMN id SET DEFAULT nextval('public.ui_sessions_id_seq'::regclass);

ALTER TABLE ONLY public.admin_tokens
    ADD CONSTRAINT admin_tokens_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.admin_tokens
    ADD CONSTRAINT admin_tokens_value_sha256_key UNIQUE (value_sha256);

ALTER TABLE ONLY public.execution_log_chunks
    ADD CONSTRAINT execution_log_chunks_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.execution_log_chunks
    ADD CONSTRAINT execution_log_chunks_seq_key UNIQUE (job_id, attempt, entry_idx, seq);

ALTER TABLE ONLY public.execution_log_entries
    ADD CONSTRAINT execution_log_entries_pkey PRIMARY KEY (job_id, attempt, idx);

ALTER TABLE ONLY public.executor_heartbeats
    ADD CONSTRAINT executor_heartbeats_hostname_key UNIQUE (hostname);

ALTER TABLE ONLY public.executor_heartbeats
    ADD CONSTRAINT executor_heartbeats_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.executor_secrets
    ADD CONSTRAINT executor_secrets_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.executor_secrets
    ADD CONSTRAINT executor_secrets_value_sha256_key UNIQUE (value_sha256);

ALTER TABLE ONLY public.job_attempts
    ADD CONSTRAINT job_attempts_pkey PRIMARY KEY (job_id, attempt);

ALTER TABLE ONLY public.job_tokens
    ADD CONSTRAINT job_tokens_job_id_key UNIQUE (job_id);

ALTER TABLE ONLY public.job_tokens
    ADD CONSTRAINT job_tokens_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.job_tokens
    ADD CONSTRAINT job_tokens_value_sha256_key UNIQUE (value_sha256);

ALTER TABLE ONLY public.jobs
    ADD CONSTRAINT jobs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.repositories
    ADD CONSTRAINT repositories_pkey PRIMARY KEY (name);

ALTER TABLE ONLY public.sandfleet_migration_lock
    ADD CONSTRAINT sandfleet_migration_lock_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.sandfleet_migration
    ADD CONSTRAINT sandfleet_migration_pkey PRIMARY KEY (name);

ALTER TABLE ONLY public.ui_sessions
    ADD CONSTRAINT ui_sessions_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.ui_sessions
    ADD CONSTRAINT ui_sessions_value_sha256_key UNIQUE (value_sha256);

CREATE INDEX execution_log_chunks_follow_idx ON public.execution_log_chunks USING btree (job_id, id);

CREATE INDEX execution_log_entries_change_idx ON public.execution_log_entries USING btree (job_id, change_id);

CREATE UNIQUE INDEX execution_log_entries_client_key_idx ON public.execution_log_entries USING btree (job_id, attempt, client_key) WHERE (client_key IS NOT NULL);

CREATE INDEX jobs_dequeue_idx ON public.jobs USING btree (queue, priority DESC, id) WHERE (state = ANY (ARRAY['queued'::text, 'errored'::text]));

CREATE INDEX jobs_processing_idx ON public.jobs USING btree (queue, last_heartbeat_at) WHERE (state = 'processing'::text);

CREATE INDEX jobs_queue_id_idx ON public.jobs USING btree (queue, id DESC);

CREATE INDEX jobs_repository_id_idx ON public.jobs USING btree (repository_name, id DESC);

CREATE INDEX jobs_retry_of_idx ON public.jobs USING btree (retry_of) WHERE (retry_of IS NOT NULL);

CREATE INDEX jobs_state_id_idx ON public.jobs USING btree (state, id DESC);

CREATE INDEX jobs_worker_processing_idx ON public.jobs USING btree (worker_hostname) WHERE (state = 'processing'::text);

CREATE INDEX ui_sessions_admin_token_id_idx ON public.ui_sessions USING btree (admin_token_id);

CREATE INDEX ui_sessions_expires_at_idx ON public.ui_sessions USING btree (expires_at);

ALTER TABLE ONLY public.execution_log_chunks
    ADD CONSTRAINT execution_log_chunks_job_id_attempt_entry_idx_fkey FOREIGN KEY (job_id, attempt, entry_idx) REFERENCES public.execution_log_entries(job_id, attempt, idx) ON DELETE CASCADE;

ALTER TABLE ONLY public.execution_log_entries
    ADD CONSTRAINT execution_log_entries_job_id_fkey FOREIGN KEY (job_id) REFERENCES public.jobs(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.job_attempts
    ADD CONSTRAINT job_attempts_job_id_fkey FOREIGN KEY (job_id) REFERENCES public.jobs(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.job_tokens
    ADD CONSTRAINT job_tokens_job_id_fkey FOREIGN KEY (job_id) REFERENCES public.jobs(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.jobs
    ADD CONSTRAINT jobs_retry_of_fkey FOREIGN KEY (retry_of) REFERENCES public.jobs(id) ON DELETE SET NULL;

ALTER TABLE ONLY public.ui_sessions
    ADD CONSTRAINT ui_sessions_admin_token_id_fkey FOREIGN KEY (admin_token_id) REFERENCES public.admin_tokens(id) ON DELETE CASCADE;
