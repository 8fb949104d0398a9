resource "random_id" "suffix" {
  count       = var.randomize_resource_names ? 1 : 0
  byte_length = 2
}

locals {
  suffix         = var.randomize_resource_names ? "-${random_id.suffix[0].hex}" : ""
  name           = "${var.resource_prefix}sourcegraph-executors-docker-mirror${local.suffix}"
  role_name      = var.randomize_resource_names ? "${var.resource_prefix}docker-mirror${local.suffix}" : "${var.resource_prefix}sourcegraph_executors_docker_mirror"
  security_group = var.docker_mirror_access_security_group_id != "" ? var.docker_mirror_access_security_group_id : aws_security_group.default[0].id
}

# machine_ami, or the latest stock Debian 13 AMI from Debian's cloud team's account.
data "aws_ami" "mirror" {
  most_recent = true
  owners      = var.machine_ami != "" ? null : ["136693071363"]

  filter {
    name   = var.machine_ami != "" ? "image-id" : "name"
    values = [var.machine_ami != "" ? var.machine_ami : "debian-13-amd64-*"]
  }

  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }

  filter {
    name   = "root-device-type"
    values = ["ebs"]
  }
}

data "aws_subnet" "mirror" {
  id = var.subnet_id
}

resource "aws_iam_role" "ec2-role" {
  name                 = local.role_name
  permissions_boundary = var.permissions_boundary_arn != "" ? var.permissions_boundary_arn : null
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "ec2.amazonaws.com" }
    }]
  })
}

resource "aws_iam_role_policy_attachment" "cloudwatch" {
  role       = aws_iam_role.ec2-role.name
  policy_arn = "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"
}

resource "aws_iam_role_policy_attachment" "ssm" {
  role       = aws_iam_role.ec2-role.name
  policy_arn = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "instance" {
  name = local.role_name
  role = aws_iam_role.ec2-role.name
}

resource "aws_cloudwatch_log_group" "executors_docker_mirror" {
  name              = "${var.resource_prefix}executors_docker_mirror${local.suffix}"
  retention_in_days = 7
}

resource "aws_security_group" "default" {
  count  = var.docker_mirror_access_security_group_id == "" ? 1 : 0
  name   = "${var.resource_prefix}SourcegraphExecutorsDockerMirrorAccess${local.suffix}"
  vpc_id = var.vpc_id

  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = [var.ssh_access_cidr_range]
  }

  ingress {
    from_port   = 5000
    to_port     = 5000
    protocol    = "tcp"
    cidr_blocks = [var.http_access_cidr_range]
  }

  ingress {
    from_port   = 9999
    to_port     = 9999
    protocol    = "tcp"
    cidr_blocks = [var.http_access_cidr_range]
  }

  egress {
    from_port        = 0
    to_port          = 0
    protocol         = "-1"
    cidr_blocks      = ["0.0.0.0/0"]
    ipv6_cidr_blocks = ["::/0"]
  }
}

# The executors are configured with this address, so it must not change with the instance.
resource "aws_network_interface" "static" {
  subnet_id       = var.subnet_id
  private_ips     = [var.static_ip]
  security_groups = [local.security_group]
}

resource "aws_eip" "static" {
  count             = var.assign_public_ip ? 1 : 0
  vpc               = true
  network_interface = aws_network_interface.static.id
}

# The cached images live on their own volume, so replacing the instance keeps them.
resource "aws_ebs_volume" "docker-storage" {
  availability_zone = data.aws_subnet.mirror.availability_zone
  type              = "gp3"
  encrypted         = true
  size              = var.disk_size
  iops              = var.disk_iops
  throughput        = var.disk_throughput
  tags              = { Name = "${local.name}-data" }
}

resource "aws_instance" "default" {
  ami                  = data.aws_ami.mirror.id
  instance_type        = var.machine_type
  iam_instance_profile = aws_iam_instance_profile.instance.name
  monitoring           = true
  tags                 = { Name = local.name, executor_tag = "${var.instance_tag_prefix}-docker-mirror" }

  root_block_device {
    volume_type = "gp3"
    volume_size = var.boot_disk_size
    encrypted   = true
  }

  network_interface {
    network_interface_id = aws_network_interface.static.id
    device_index         = 0
  }

  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required"
  }

  # Nitro instances show the volume as NVMe, named by its id; Xen ones as /dev/xvdh.
  user_data = templatefile("${path.module}/../../../shared/registry-mirror/startup-script.sh.tpl", {
    data_devices = "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${replace(aws_ebs_volume.docker-storage.id, "-", "")} /dev/xvdh /dev/sdh"
  })
}

resource "aws_volume_attachment" "docker-storage" {
  device_name = "/dev/sdh"
  volume_id   = aws_ebs_volume.docker-storage.id
  instance_id = aws_instance.default.id
}
