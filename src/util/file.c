/*
 * Files: whole reads, durable atomic writes (temp file in the same directory,
 * fsync, rename, fsync the directory: a crash leaves the old file or the new
 * one, never a mix), mkdir -p, rm -rf. System-call errors name the call and path.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "prewarm/util.h"

int pw_write_all(int fd, const void *data, size_t len)
{
	const uint8_t *p = data;
	while (len) {
		ssize_t n = write(fd, p, len > (1u << 30) ? (1u << 30) : len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return pw_error_set_errno(PW_EIO, "write");
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int pw_file_read(const char *path, size_t max, pw_buf *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	int rc = 0;

	if (fd < 0)
		return pw_error_set_errno(errno == ENOENT ? PW_ENOTFOUND : PW_EIO, "open %s", path);
	if (fstat(fd, &st) < 0) {
		rc = pw_error_set_errno(PW_EIO, "fstat %s", path);
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		rc = pw_error_set(PW_EINVALID, "%s is a directory", path);
		goto out;
	}
	if (max && (uint64_t)st.st_size > max) {
		rc = pw_error_set(PW_EINVALID, "%s is too large (%lld bytes, limit %zu)", path,
		                  (long long)st.st_size, max);
		goto out;
	}
	if (st.st_size > 0 && pw_buf_reserve(out, (size_t)st.st_size) < 0) {
		rc = PW_ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n;
		if (pw_buf_reserve(out, 65536) < 0) {
			rc = PW_ENOMEM;
			goto out;
		}
		n = read(fd, out->data + out->len, out->cap - out->len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = pw_error_set_errno(PW_EIO, "read %s", path);
			goto out;
		}
		if (n == 0)
			break;
		out->len += (size_t)n;
		if (max && out->len > max) {
			rc = pw_error_set(PW_EINVALID, "%s is too large (limit %zu bytes)", path, max);
			goto out;
		}
	}
	out->data[out->len] = 0;
out:
	close(fd);
	return rc;
}

int pw_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return pw_error_set_errno(PW_EIO, "open directory %s", dir);
	if (fsync(fd) < 0 && errno != EINVAL && errno != EROFS) {
		int rc = pw_error_set_errno(PW_EIO, "fsync directory %s", dir);
		close(fd);
		return rc;
	}
	close(fd);
	return 0;
}

static void split_path(const char *path, char *dir, size_t dn, const char **base)
{
	const char *slash = strrchr(path, '/');
	if (!slash) {
		snprintf(dir, dn, ".");
		*base = path;
	} else if (slash == path) {
		snprintf(dir, dn, "/");
		*base = slash + 1;
	} else {
		snprintf(dir, dn, "%.*s", (int)(slash - path), path);
		*base = slash + 1;
	}
}

int pw_durable_open(pw_durable *w, const char *path, mode_t mode)
{
	const char *base;
	uint32_t rnd = 0;

	w->fd = -1;
	w->tmp[0] = 0;
	if (strlen(path) >= sizeof w->path)
		return pw_error_set(PW_EINVALID, "path too long: %s", path);
	snprintf(w->path, sizeof w->path, "%s", path);
	split_path(path, w->dir, sizeof w->dir, &base);
	if (getrandom(&rnd, sizeof rnd, 0) < 0)
		rnd = (uint32_t)rand();
	if ((size_t)snprintf(w->tmp, sizeof w->tmp, "%s/.tmp-%s.%ld.%08x", w->dir, base, (long)getpid(), rnd) >=
	    sizeof w->tmp)
		return pw_error_set(PW_EINVALID, "path too long: %s", path);
	do
		w->fd = open(w->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	while (w->fd < 0 && errno == EINTR);
	if (w->fd < 0) {
		int rc = pw_error_set_errno(PW_EIO, "create %s", w->tmp);
		w->tmp[0] = 0;
		return rc;
	}
	return 0;
}

int pw_durable_write(pw_durable *w, const void *data, size_t len)
{
	int rc = pw_write_all(w->fd, data, len);
	return rc < 0 ? pw_error_prefix("%s", w->tmp) : 0;
}

void pw_durable_abort(pw_durable *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	if (w->tmp[0])
		unlink(w->tmp);
	w->tmp[0] = 0;
}

int pw_durable_commit(pw_durable *w)
{
	int rc = 0;
	if (fsync(w->fd) < 0)
		rc = pw_error_set_errno(PW_EIO, "fsync %s", w->tmp);
	if (close(w->fd) < 0 && rc == 0)
		rc = pw_error_set_errno(PW_EIO, "close %s", w->tmp);
	w->fd = -1;
	if (rc == 0 && rename(w->tmp, w->path) < 0)
		rc = pw_error_set_errno(PW_EIO, "rename %s to %s", w->tmp, w->path);
	if (rc < 0) {
		pw_durable_abort(w);
		return rc;
	}
	w->tmp[0] = 0;
	return pw_fsync_dir(w->dir);
}

int pw_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	pw_durable w;
	int rc = pw_durable_open(&w, path, mode);
	if (rc == 0 && (rc = pw_durable_write(&w, data, len)) < 0)
		pw_durable_abort(&w);
	return rc < 0 ? rc : pw_durable_commit(&w);
}

int pw_mkdirs(const char *path, mode_t mode)
{
	char p[PATH_MAX];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof p)
		return pw_error_set(PW_EINVALID, "invalid directory path '%s'", path);
	memcpy(p, path, n + 1);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return pw_error_set_errno(PW_EIO, "mkdir %s", p);
		*s = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return pw_error_set_errno(PW_EIO, "mkdir %s", p);
	struct stat st;
	if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode))
		return pw_error_set(PW_EIO, "%s exists and is not a directory", p);
	return 0;
}

int pw_rmtree(const char *path)
{
	struct stat st;
	int rc = 0;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : pw_error_set_errno(PW_EIO, "lstat %s", path);
	if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *de;
		if (!d)
			return pw_error_set_errno(PW_EIO, "opendir %s", path);
		while ((de = readdir(d))) {
			char sub[PATH_MAX];
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
			int r = pw_rmtree(sub);
			if (r < 0 && rc == 0)
				rc = r;
		}
		closedir(d);
		if (rmdir(path) < 0 && rc == 0)
			rc = pw_error_set_errno(PW_EIO, "rmdir %s", path);
	} else if (unlink(path) < 0 && errno != ENOENT) {
		rc = pw_error_set_errno(PW_EIO, "unlink %s", path);
	}
	return rc;
}

bool pw_path_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

int pw_mkdtemp(char **out, const char *prefix)
{
	const char *tmp = getenv("TMPDIR");
	char buf[PATH_MAX];

	if (!tmp || !*tmp)
		tmp = "/tmp";
	snprintf(buf, sizeof buf, "%s/%s.XXXXXX", tmp, prefix ? prefix : "prewarm");
	if (!mkdtemp(buf))
		return pw_error_set_errno(PW_EIO, "mkdtemp %s", buf);
	*out = strdup(buf);
	return *out ? 0 : pw_error_set(PW_ENOMEM, "out of memory");
}
