/* nfslab-read: print a file the way cat does, with exactly the system calls under test and nothing else.
 *
 * Built twice by the box build (lab/readers.py): -DNFSLAB_FSTAT=0 is open + read, -DNFSLAB_FSTAT=1 is open +
 * fstat + read. On success stdout has the file's contents; on failure one line on stderr names the call and
 * strerror's text (`nfslab-read: open test1.txt: Stale file handle`), which lab/outcome.py classifies, and the
 * exit status is 1. No stdio: each step is one visible system call in strace.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef NFSLAB_FSTAT
#error "build with -DNFSLAB_FSTAT=0 or 1"
#endif

static char buf[131072];

static void say(const char *s)
{
	ssize_t ignored = write(2, s, strlen(s));
	(void)ignored;
}

static int fail(const char *call, const char *path)
{
	const char *why = strerror(errno);
	say("nfslab-read: ");
	say(call);
	say(" ");
	say(path);
	say(": ");
	say(why);
	say("\n");
	return 1;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		say("usage: nfslab-read FILE\n");
		return 2;
	}
	const char *path = argv[1];
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return fail("open", path);
#if NFSLAB_FSTAT
	struct stat st;
	if (fstat(fd, &st) < 0)
		return fail("fstat", path);
#endif
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0)
			return fail("read", path);
		if (n == 0)
			break;
		for (ssize_t done = 0; done < n;) {
			ssize_t w = write(1, buf + done, n - done);
			if (w < 0)
				return fail("write", "stdout");
			done += w;
		}
	}
	close(fd);
	return 0;
}
