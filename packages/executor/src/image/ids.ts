/**
 * The uid policy of image runtimes. Image ids are shifted by ID_SHIFT on disk: image root is host
 * uid 100000, image uid 1000 is host uid 101000. Every isolating runtime maps the image's ids back
 * through a user namespace, so nothing in a job ever runs as, or owns files as, a privileged host
 * id. Like Docker's userns-remap, the range is shared by all jobs (the unpacked rootfs is shared);
 * jobs are kept apart by their mount, pid and network namespaces, not by uid.
 */
export const ID_SHIFT = 100_000;
/** How many image ids are mapped: uids and gids 0..65535. */
export const ID_RANGE = 65_536;
