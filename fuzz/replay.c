/*
 * Standalone driver for fuzz targets: feeds every file of the given directories
 * (or files) to LLVMFuzzerTestOneInput once. Run by ctest over fuzz/corpus/NAME,
 * so every input that ever crashed a parser stays a regression test.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "prewarm/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	pw_buf b = PW_BUF_INIT;
	if (pw_file_read(path, 0, &b) < 0) {
		fprintf(stderr, "replay: %s\n", pw_error_last());
		return -1;
	}
	LLVMFuzzerTestOneInput(b.data ? b.data : (const uint8_t *)"", b.len);
	pw_buf_free(&b);
	return 0;
}

int main(int argc, char **argv)
{
	int n = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "replay: %s: no such file or directory\n", argv[i]);
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (run_file(argv[i]) < 0)
				return 1;
			n++;
			continue;
		}
		DIR *d = opendir(argv[i]);
		struct dirent *de;
		while (d && (de = readdir(d))) {
			char p[4096];
			if (de->d_name[0] == '.')
				continue;
			snprintf(p, sizeof p, "%s/%s", argv[i], de->d_name);
			if (run_file(p) < 0)
				return 1;
			n++;
		}
		if (d)
			closedir(d);
	}
	printf("replayed %d inputs\n", n);
	return n > 0 ? 0 : 1;
}
