resource "random_id" "suffix" {
  count       = var.randomize_resource_names ? 1 : 0
  byte_length = 2
}

locals {
  suffix  = var.randomize_resource_names ? "-${random_id.suffix[0].hex}" : ""
  name    = "${var.resource_prefix}sourcegraph-executors${local.suffix}"
  ip_cidr = "10.0.1.0/24"
}

resource "aws_vpc" "default" {
  cidr_block                       = "10.0.0.0/16"
  assign_generated_ipv6_cidr_block = true
  enable_dns_hostnames             = true
  tags                             = { Name = local.name }
}

resource "aws_internet_gateway" "default" {
  vpc_id = aws_vpc.default.id
  tags   = { Name = local.name }
}

# Without NAT: one public subnet for everything. With NAT: the executors and the mirror in a
# private subnet, the NAT gateway in a public one.
resource "aws_subnet" "default" {
  vpc_id                  = aws_vpc.default.id
  cidr_block              = local.ip_cidr
  availability_zone       = var.availability_zone
  map_public_ip_on_launch = !var.nat
  tags                    = { Name = var.nat ? "${local.name}-private" : local.name }
}

resource "aws_subnet" "public" {
  count             = var.nat ? 1 : 0
  vpc_id            = aws_vpc.default.id
  cidr_block        = "10.0.0.0/24"
  availability_zone = var.availability_zone
  tags              = { Name = "${local.name}-public" }
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.default.id
  tags   = { Name = "${local.name}-public" }

  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.default.id
  }
}

resource "aws_route_table_association" "public" {
  subnet_id      = var.nat ? aws_subnet.public[0].id : aws_subnet.default.id
  route_table_id = aws_route_table.public.id
}

resource "aws_eip" "nat" {
  count = var.nat ? 1 : 0
  vpc   = true
  tags  = { Name = "${local.name}-nat" }
}

resource "aws_nat_gateway" "default" {
  count         = var.nat ? 1 : 0
  allocation_id = aws_eip.nat[0].id
  subnet_id     = aws_subnet.public[0].id
  tags          = { Name = local.name }
  depends_on    = [aws_internet_gateway.default]
}

resource "aws_route_table" "private" {
  count  = var.nat ? 1 : 0
  vpc_id = aws_vpc.default.id
  tags   = { Name = "${local.name}-private" }

  route {
    cidr_block     = "0.0.0.0/0"
    nat_gateway_id = aws_nat_gateway.default[0].id
  }
}

resource "aws_route_table_association" "private" {
  count          = var.nat ? 1 : 0
  subnet_id      = aws_subnet.default.id
  route_table_id = aws_route_table.private[0].id
}
