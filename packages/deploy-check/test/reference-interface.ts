/**
 * The inputs and outputs of Sourcegraph's executor modules (terraform-google-executors and
 * terraform-aws-executors: each root module's variables.tf, and the inputs and outputs of its
 * submodules), typed in from the specification we are compatible with. This is the spec: an
 * existing `module "executors"` block must keep working when only its `source` changes.
 *
 * A default is written as the specification writes it: `required` for none, `""` for the empty
 * string, `null`, numbers and booleans bare, lists as JSON. ANY marks an input whose default the
 * specification does not give.
 */
export const ANY = '(any)';

export interface ModuleInterface {
  variables: Record<string, string>;
  outputs: string[];
}

const googleRoot: ModuleInterface = {
  variables: {
    region: 'required',
    zone: 'required',
    docker_mirror_machine_image: '""',
    docker_mirror_machine_type: 'n2-standard-2',
    docker_mirror_boot_disk_size: '10',
    docker_mirror_use_local_ssd: 'false',
    docker_mirror_http_access_cidr_ranges: '["10.0.0.0/16"]',
    executor_resource_prefix: '""',
    executor_machine_image: '""',
    executor_machine_type: 'c2-standard-8',
    executor_use_local_ssd: 'false',
    executor_boot_disk_size: '100',
    executor_preemptible_machines: 'false',
    executor_instance_tag: 'required',
    executor_http_access_cidr_ranges: '["0.0.0.0/0"]',
    executor_sourcegraph_external_url: 'required',
    executor_sourcegraph_executor_proxy_password: 'required',
    executor_queue_name: '""',
    executor_queue_names: 'null',
    executor_maximum_runtime_per_job: '45m',
    executor_maximum_num_jobs: '2',
    executor_num_total_jobs: '200',
    executor_max_active_time: '12h',
    executor_job_num_cpus: '4',
    executor_firecracker_num_cpus: '4',
    executor_job_memory: '12GB',
    executor_firecracker_memory: '12GB',
    executor_firecracker_disk_space: '20GB',
    executor_use_firecracker: 'true',
    executor_min_replicas: '1',
    executor_max_replicas: '1',
    executor_jobs_per_instance_scaling: '20',
    executor_metrics_environment_label: 'required',
    private_networking: 'false',
    executor_docker_auth_config: '""',
    randomize_resource_names: 'false',
    private_ca_cert_path: '""',
  },
  outputs: [],
};

const awsRoot: ModuleInterface = {
  variables: {
    availability_zone: 'required',
    docker_mirror_machine_ami: '""',
    docker_mirror_machine_type: 'm5.large',
    docker_mirror_boot_disk_size: '64',
    docker_mirror_disk_iops: '3000',
    docker_mirror_static_ip: '10.0.1.4',
    docker_mirror_ssh_access_cidr_range: '0.0.0.0/0',
    docker_mirror_http_access_cidr_range: '10.0.0.0/16',
    executor_resource_prefix: '""',
    executor_machine_image: '""',
    executor_machine_type: 'c5n.metal',
    executor_boot_disk_size: '100',
    executor_boot_disk_iops: '3000',
    executor_preemptible_machines: 'false',
    executor_instance_tag: 'required',
    executor_ssh_access_cidr_range: '0.0.0.0/0',
    executor_http_access_cidr_range: '0.0.0.0/0',
    executor_sourcegraph_external_url: 'required',
    executor_sourcegraph_executor_proxy_password: 'required',
    executor_queue_name: '""',
    executor_queue_names: 'null',
    executor_maximum_runtime_per_job: '30m',
    executor_maximum_num_jobs: '18',
    executor_num_total_jobs: '1800',
    executor_max_active_time: '2h',
    executor_firecracker_num_cpus: '4',
    executor_job_num_cpus: '4',
    executor_firecracker_memory: '12GB',
    executor_job_memory: '12GB',
    executor_firecracker_disk_space: '20GB',
    executor_use_firecracker: 'true',
    executor_min_replicas: '1',
    executor_max_replicas: '1',
    executor_jobs_per_instance_scaling: '360',
    executor_metrics_environment_label: 'required',
    private_networking: 'false',
    security_group_id: '""',
    executor_docker_auth_config: '""',
    randomize_resource_names: 'false',
    permissions_boundary_arn: '""',
    ami_version: '""',
    private_ca_cert_path: '""',
  },
  outputs: [],
};

const googleExecutors: ModuleInterface = {
  variables: {
    zone: ANY, network_id: ANY, subnet_id: ANY,
    resource_prefix: '""', machine_image: '""', machine_type: 'c2-standard-8',
    boot_disk_size: '100', preemptible_machines: 'false', instance_tag: ANY,
    http_access_cidr_ranges: ANY,
    sourcegraph_external_url: ANY, sourcegraph_executor_proxy_password: ANY,
    queue_name: '""', queue_names: 'null',
    maximum_runtime_per_job: '45m', maximum_num_jobs: '2', num_total_jobs: '200', max_active_time: '12h',
    job_num_cpus: '4', firecracker_num_cpus: '4', job_memory: '12GB', firecracker_memory: '12GB',
    firecracker_disk_space: '20GB', use_firecracker: 'true',
    min_replicas: '1', max_replicas: '1', jobs_per_instance_scaling: '20', metrics_environment_label: ANY,
    docker_registry_mirror: '""', docker_registry_mirror_node_exporter_url: '""',
    assign_public_ip: 'true', docker_auth_config: '""', labels: '{}',
    randomize_resource_names: 'false', use_local_ssd: 'false', private_ca_cert_path: '""',
  },
  outputs: [],
};

const googleDockerMirror: ModuleInterface = {
  variables: {
    zone: ANY, network_id: ANY, subnet_id: ANY,
    machine_image: '""', machine_type: 'n2-standard-2',
    boot_disk_size: '10', disk_size: '64',
    http_access_cidr_ranges: '["10.0.0.0/16"]', http_metrics_access_cidr_ranges: ANY,
    instance_tag_prefix: ANY, assign_public_ip: 'true', resource_prefix: '""', labels: '{}',
    randomize_resource_names: 'false', use_local_ssd: 'false',
  },
  outputs: ['ip_address'],
};

const googleNetworking: ModuleInterface = {
  variables: { region: ANY, nat: 'false', nat_min_ports_per_vm: '1024', resource_prefix: ANY, randomize_resource_names: ANY },
  outputs: ['network_id', 'subnet_id', 'ip_cidr', 'nat_ip'],
};

const googleCredentials: ModuleInterface = {
  variables: { resource_prefix: ANY },
  outputs: ['metric_writer_credentials_file'],
};

const awsExecutors: ModuleInterface = {
  variables: {
    vpc_id: ANY, subnet_id: ANY, resource_prefix: ANY, machine_image: ANY, machine_type: 'c5n.metal', ami_version: ANY,
    boot_disk_size: '500', boot_disk_iops: '3000', boot_disk_throughput: '125',
    preemptible_machines: ANY, instance_tag: ANY, ssh_access_cidr_range: '10.0.0.0/16', http_access_cidr_range: ANY,
    sourcegraph_external_url: ANY, sourcegraph_executor_proxy_password: ANY, queue_name: ANY, queue_names: ANY,
    maximum_runtime_per_job: '30m', maximum_num_jobs: '18', num_total_jobs: '1800', max_active_time: '2h',
    firecracker_num_cpus: '4', job_num_cpus: '4', firecracker_memory: '12GB', job_memory: '12GB',
    firecracker_disk_space: '20GB', use_firecracker: 'true',
    min_replicas: '1', max_replicas: '1', jobs_per_instance_scaling: '360', metrics_environment_label: ANY,
    docker_registry_mirror: ANY, docker_registry_mirror_node_exporter_url: ANY, assign_public_ip: 'true',
    metrics_access_security_group_id: ANY, docker_auth_config: ANY, randomize_resource_names: ANY,
    permissions_boundary_arn: ANY, private_ca_cert_path: ANY,
  },
  outputs: [],
};

const awsDockerMirror: ModuleInterface = {
  variables: {
    vpc_id: ANY, subnet_id: ANY, machine_ami: ANY, machine_type: 'm5n.large', ami_version: ANY,
    boot_disk_size: '32', disk_size: '64', disk_iops: '3000', disk_throughput: '125',
    static_ip: ANY, ssh_access_cidr_range: '10.0.0.0/16', http_access_cidr_range: '10.0.0.0/16',
    http_metrics_access_cidr_range: ANY,
    instance_tag_prefix: ANY, assign_public_ip: 'true', docker_mirror_access_security_group_id: ANY,
    resource_prefix: ANY, randomize_resource_names: ANY, permissions_boundary_arn: ANY,
  },
  outputs: [],
};

const awsNetworking: ModuleInterface = {
  variables: { availability_zone: ANY, nat: 'false', resource_prefix: ANY, randomize_resource_names: ANY },
  outputs: ['vpc_id', 'subnet_id', 'ip_cidr', 'nat_ip'],
};

const awsCredentials: ModuleInterface = {
  variables: { resource_prefix: ANY, permissions_boundary_arn: ANY },
  outputs: ['metric_writer_access_key_id', 'metric_writer_secret_key'],
};

/** By module directory, relative to deploy/terraform. */
export const REFERENCE_INTERFACES: Record<string, ModuleInterface> = {
  google: googleRoot,
  'google/modules/executors': googleExecutors,
  'google/modules/docker-mirror': googleDockerMirror,
  'google/modules/networking': googleNetworking,
  'google/modules/credentials': googleCredentials,
  aws: awsRoot,
  'aws/modules/executors': awsExecutors,
  'aws/modules/docker-mirror': awsDockerMirror,
  'aws/modules/networking': awsNetworking,
  'aws/modules/credentials': awsCredentials,
};

/** What the root modules add to Sourcegraph's inputs (each described as a "Sandfleet addition"). */
export const ROOT_ADDITIONS: Record<string, string> = {
  executor_binary_url: 'required',
  executor_binary_sha256: 'required',
  executor_runtime: 'gvisor',
  executor_drain_timeout_seconds: '3600',
};

/** Inputs the specification marks sensitive. */
export const SENSITIVE_ROOT_VARIABLES = ['executor_sourcegraph_executor_proxy_password'];

