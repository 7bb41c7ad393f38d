"""Writes the cbuild workload's C project into a new directory: usage
gen_cproj.py DIR NMODULES.

A tiny ./configure (checks the compiler and headers, writes a Makefile),
common.h, NMODULES modules of eight functions each and main.c. The content is
fixed; tools/bench/bench tars it with fixed names, owners and mtimes."""
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d)
def w(name, text, mode=0o644):
    with open(os.path.join(d, name), "w") as f:
        f.write(text)
    os.chmod(os.path.join(d, name), mode)
w("configure", r'''#!/bin/sh
# tiny configure: checks the compiler and writes Makefile
CC=${CC:-cc}
CFLAGS=${CFLAGS:--O2 -Wall}
printf 'checking for a working C compiler... '
cat > conftest.c <<'EOT'
int main(void) { return 0; }
EOT
$CC $CFLAGS conftest.c -o conftest || { echo no; exit 1; }
rm -f conftest conftest.c
echo "$CC"
for h in stdio.h stdlib.h string.h stdint.h; do
  printf 'checking for %s... ' "$h"
  printf '#include <%s>\nint main(void){return 0;}\n' "$h" > conftest.c
  $CC -c conftest.c -o conftest.o && echo yes || { echo no; exit 1; }
  rm -f conftest.c conftest.o
done
SRCS=$(ls mod*.c main.c | tr '\n' ' ')
{
  echo "CC = $CC"
  echo "CFLAGS = $CFLAGS"
  echo "SRCS = $SRCS"
  echo 'OBJS = $(SRCS:.c=.o)'
  echo 'prog: $(OBJS)'
  printf '\t$(CC) $(CFLAGS) -o $@ $(OBJS)\n'
  echo '%.o: %.c common.h'
  printf '\t$(CC) $(CFLAGS) -c $< -o $@\n'
  echo 'clean:'
  printf '\trm -f prog $(OBJS)\n'
} > Makefile
echo "config.status: creating Makefile"
''', 0o755)
decls = "\n".join(f"long mod{i}_run(long x);" for i in range(n))
w("common.h", "#ifndef COMMON_H\n#define COMMON_H\n#include <stdint.h>\n" + decls + "\n#endif\n")
for i in range(n):
    funcs = []
    for j in range(8):
        funcs.append(f'''
static long f{j}(long x) {{
    long acc = {i * 31 + j};
    for (int k = 0; k < 64; k++) {{
        acc = acc * 6364136223846793005L + (x ^ k) + {j};
        if (acc % 7 == {j % 7}) acc ^= acc >> 13;
    }}
    char buf[64];
    snprintf(buf, sizeof buf, "%ld", acc);
    return acc + (long)strlen(buf);
}}''')
    body = " + ".join(f"f{j}(x + {j})" for j in range(8))
    w(f"mod{i:02d}.c", '#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include "common.h"\n'
      + "".join(funcs) + f"\nlong mod{i}_run(long x) {{ return {body}; }}\n")
calls = "\n".join(f"    s += mod{i}_run(s);" for i in range(n))
w("main.c", '#include <stdio.h>\n#include "common.h"\nint main(void) {\n    long s = 1;\n' + calls
  + '\n    printf("%ld\\n", s);\n    return 0;\n}\n')
