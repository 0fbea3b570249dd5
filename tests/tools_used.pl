#!/usr/bin/perl
# Which external programs, Python modules and capabilities the test suite and the benchmarks
# use, derived from their source (so that a new tool cannot be forgotten), and whether this
# machine has them. Perl, because perl-base is Essential in Debian: this runs on a machine
# where nothing else has been installed yet.
#
#   tests/tools_used.pl           list: KIND NAME WHERE (first use), one per line
#   tests/tools_used.pl --check   check each on this machine; name what is missing; exit 1 if any
#
# Read: tests/**/*.rs and benches/**/*.rs (Command::new("x"), helpers that run their &str
# argument such as have("x") / require("x"), `timeout N x`, `sh -c` snippets, Python
# snippets' imports and subprocess calls), tests/**/*.py (imports), and tests/**/*.sh and
# benches/**/*.sh (every word in command position, heredoc and -c Python included).
# A process spawn whose program cannot be read from the source is an error: write it as a
# literal. tests/deps.sh and tests/fresh_machine.sh are the installers, not users.
use strict;
use warnings;

my $check = grep { $_ eq '--check' } @ARGV;
my ($root) = grep { $_ ne '--check' } @ARGV;
unless (defined $root) {
    ($root = $0) =~ s{/?[^/]*$}{};
    $root = '.' if $root eq '';
    $root .= '/..';
}

# The Rust toolchain comes from rustup (README), not from tests/deps.sh.
my %TOOLCHAIN = map { $_ => 1 } qw(cargo rustc rustup);
# Wrappers whose first non-option argument is the program they run.
my %WRAPPER = map { $_ => 1 } qw(timeout env nice exec command sudo nohup setsid stdbuf);
my %INSTALLERS = map { $_ => 1 } ('tests/deps.sh', 'tests/fresh_machine.sh');

# Capabilities beyond "the program exists": [name, program, pattern in a file that uses the
# program, shell check].
my @CAPABILITIES = (
    [   'swaks-starttls', 'swaks', qr/"--tls"|\s--tls\b/,
        'swaks --support 2>&1 | grep -q "^=== TLS supported"',
        'swaks needs libnet-ssleay-perl and libio-socket-ssl-perl for STARTTLS'
    ],
    [   'chromium-headless-screenshot', 'chromium', qr/--screenshot/,
        'd=$(mktemp -d) && chromium --headless --no-sandbox --disable-gpu --no-first-run '
            . '--user-data-dir="$d/profile" --screenshot="$d/shot.png" --window-size=400,300 '
            . '"data:text/html,<h1>markgate</h1>" >/dev/null 2>&1; '
            . 'ok=1; head -c 4 "$d/shot.png" 2>/dev/null | grep -q PNG && ok=0; rm -rf "$d"; exit $ok',
        'headless Chromium could not write a screenshot'
    ],
    [   'dkim-ed25519', 'dkim', qr/ed25519/i,
        'python3 -c "import dkim, nacl"',
        'dkimpy verifies Ed25519 signatures only with PyNaCl'
    ],
    [   'openssl-rawin', 'openssl', qr/-rawin/,
        'openssl pkeyutl -help 2>&1 | grep -q -- -rawin',
        'openssl pkeyutl has no -rawin (Ed25519 verification needs OpenSSL 3)'
    ],
);

my %found;    # "kind\tname" => where
my @errors;

sub note {
    my ($kind, $name, $where) = @_;
    return if $kind eq 'command' && ($TOOLCHAIN{$name} || $name eq '');
    $found{"$kind\t$name"} //= $where;
}

sub files_under {
    my ($dir, $pattern) = @_;
    my @out;
    opendir(my $dh, "$root/$dir") or return ();
    for my $entry (sort readdir $dh) {
        next if $entry =~ /^\./;
        my $rel = "$dir/$entry";
        if (-d "$root/$rel") {
            next if $rel eq 'tests/target';
            push @out, files_under($rel, $pattern);
        } elsif ($entry =~ $pattern) {
            push @out, $rel;
        }
    }
    closedir $dh;
    return @out;
}

sub slurp {
    my ($rel) = @_;
    open(my $fh, '<', "$root/$rel") or die "tools_used.pl: cannot read $rel: $!\n";
    local $/;
    my $text = <$fh>;
    close $fh;
    return $text;
}

sub line_of {
    my ($text, $offset) = @_;
    return 1 + (substr($text, 0, $offset) =~ tr/\n//);
}

sub python_imports {
    my ($code, $where) = @_;
    # Snippets inside Rust strings carry \n escapes; inside shell quotes, real newlines.
    $code =~ s/\\n/\n/g;
    for my $line (split /\n|;/, $code) {
        if ($line =~ /(?:^|["'])\s*import\s+([\w.,\s]+?)\s*$/) {
            note('python', (split /\./)[0], $where) for map { s/\s+as\s+\w+//r =~ s/\s//gr } split /,/, $1;
        } elsif ($line =~ /(?:^|["'])\s*from\s+([\w]+)[\w.]*\s+import\b/) {
            note('python', $1, $where);
        }
    }
    while ($code =~ /subprocess\.\w+\(\s*\[\s*['"]([^'"]+)['"]/g) {
        note('command', $1 =~ s{.*/}{}r, $where);
    }
}

# --- shell ---------------------------------------------------------------------------------

my %SHELL_WORDS;    # builtins and keywords of bash
{
    my $words = `bash -c 'compgen -b; compgen -k' 2>/dev/null`;
    $SHELL_WORDS{$_} = 1 for split /\s+/, $words;
}

# Every word in command position in a shell script (or a `sh -c` snippet).
sub shell_commands {
    my ($text, $file, $line) = @_;
    my %functions = map { $_ => 1 } ($text =~ /^\s*(?:function\s+)?([\w.-]+)\s*\(\)/mg);
    # One context per nesting level: the script, "...", $(...). Each remembers the simple
    # command being read (its words, and whether the next word is in command position).
    my @stack = ({ kind => 'code', word => '', words => [], at => 1, parens => 0 });
    my @heredocs;    # [terminator, is_python] waiting for the end of the line
    my $cx = $stack[0];
    my $is_python = sub { @{ $cx->{words} } && $cx->{words}[0] =~ /^python3?$/ };
    my $take = sub {
        my $word = $cx->{word};
        $cx->{word} = '';
        return if $word eq '';
        push @{ $cx->{words} }, $word;
        return unless $cx->{at};
        return if $word =~ /^[A-Za-z_]\w*(\[[^\]]*\])?\+?=/;    # assignment: the command follows
        if ($word =~ /^(\d*|&)[<>]+[|&]?$/) {                  # `> file`: the file follows
            $cx->{target} = 1;
            return;
        }
        if ($cx->{target}) {
            $cx->{target} = 0;
            return;
        }
        return if $word =~ /^\d*[<>]/;                          # redirection
        (my $name = $word) =~ s/^["']+|["']+$//g;
        if ($name =~ /^\$\{?SUDO\}?$/) { return; }              # $SUDO apt-get ...
        if ($name =~ /^[\$-]/ || $name eq '') { $cx->{at} = 0; return; }    # "$BIN", -v: not a name
        if ($name eq '!' || $name eq 'time') { return; }
        if ($SHELL_WORDS{$name}) {
            # after these a command follows; after other builtins, arguments
            $cx->{at} = 0 unless $name =~ /^(if|then|else|elif|do|while|until|\{|\}|exec|command)$/;
            return;
        }
        if ($WRAPPER{$name}) { note('command', $name, "$file:$line"); return; }
        if ($functions{$name} || ($name =~ m{/} && $name !~ m{^/(usr|bin|sbin)/})) {
            $cx->{at} = 0;
            return;
        }
        note('command', $name =~ s{^(?!/).*/}{}r, "$file:$line") if $name =~ m{^[\w./+-]+$};
        $cx->{at} = 0;
    };
    my $end_command = sub {
        $take->();
        $cx->{words} = [];
        $cx->{at} = 1;
    };
    my $i = 0;
    my $n = length $text;
    while ($i < $n) {
        my $c = substr($text, $i, 1);
        my $two = substr($text, $i, 2);
        if ($two eq '$(' && substr($text, $i, 3) ne '$((') {
            push @stack, { kind => 'code', word => '', words => [], at => 1, parens => 0, sub => 1 };
            $cx = $stack[-1];
            $i += 2;
            next;
        }
        if ($cx->{kind} eq 'dquote') {
            # the quoted text belongs to the word around it ("$BIN" stays a variable)
            my $outer = $stack[-2];
            if ($c eq '\\') { $outer->{word} .= substr($text, $i + 1, 1); $i += 2; next; }
            if ($c eq '"') { pop @stack; $cx = $outer; $i++; next; }
            $line++ if $c eq "\n";
            $outer->{word} .= $c;
            $i++;
            next;
        }
        if ($c eq "\n") {
            $take->();
            $line++;
            $i++;
            for my $h (@heredocs) {
                my ($term, $python) = @$h;
                my $body = $i;
                while ($i < $n) {
                    my $nl = index($text, "\n", $i);
                    $nl = $n if $nl < 0;
                    my $l = substr($text, $i, $nl - $i);
                    $i = $nl + 1;
                    $line++;
                    last if $l =~ /^\t*\Q$term\E\s*$/;
                }
                python_imports(substr($text, $body, $i - $body), "$file:$line") if $python;
            }
            @heredocs = ();
            $end_command->();
            next;
        }
        if ($c eq '#' && $cx->{word} eq '') {
            my $nl = index($text, "\n", $i);
            $i = $nl < 0 ? $n : $nl;
            next;
        }
        if ($c eq '\\') {
            if (substr($text, $i + 1, 1) eq "\n") { $line++; }
            else { $cx->{word} .= substr($text, $i + 1, 1); }
            $i += 2;
            next;
        }
        if ($c eq "'") {
            my $end = index($text, "'", $i + 1);
            $end = $n if $end < 0;
            my $content = substr($text, $i + 1, $end - $i - 1);
            python_imports($content, "$file:$line") if $is_python->();
            $line += ($content =~ tr/\n//);
            $cx->{word} .= "'$content'";
            $i = $end + 1;
            next;
        }
        if ($c eq '"') {
            push @stack, { kind => 'dquote' };
            $cx = $stack[-1];
            $i++;
            next;
        }
        if (substr($text, $i, 3) eq '$((' || $two eq '((') {    # arithmetic: no commands
            my $depth = 0;
            do {
                my $d = substr($text, $i, 1);
                $depth++ if $d eq '(';
                $depth-- if $d eq ')';
                $i++;
            } while ($i < $n && $depth > 0);
            $cx->{word} .= '0';
            next;
        }
        if ($two eq '<<' && substr($text, $i, 3) ne '<<<') {
            $take->();
            if (substr($text, $i + 2) =~ /^(-?\s*(['"]?)([\w.-]+)\2)/) {
                push @heredocs, [$3, $is_python->() ? 1 : 0];
                $i += 2 + length($1);
                next;
            }
        }
        if ($c eq '(' && $cx->{word} =~ /=$/) {    # array assignment a=(x y)
            my $end = index($text, ')', $i);
            $i = $end < 0 ? $n : $end + 1;
            $cx->{word} .= '()';
            next;
        }
        if ($two eq '()' && $cx->{word} ne '') {    # name() { ...
            $cx->{word} = '';
            $cx->{words} = [];
            $i += 2;
            next;
        }
        if ($c eq ')') {
            if ($cx->{parens} > 0 || !$cx->{sub}) {
                $cx->{parens}-- if $cx->{parens} > 0;
                $end_command->();
            } else {
                $take->();
                pop @stack;
                $cx = $stack[-1];
                # the substitution's output is part of the word around it
                ($cx->{kind} eq 'dquote' ? $stack[-2] : $cx)->{word} .= '$x';
            }
            $i++;
            next;
        }
        if ($c eq '(') { $cx->{parens}++; $end_command->(); $i++; next; }
        if ($c eq '&' && ($cx->{word} =~ /[<>]$/ || substr($text, $i + 1, 1) eq '>')) {
            $cx->{word} .= $c;    # >&2, 2>&1, &>file: a redirection
            $i++;
            next;
        }
        if ($c =~ /[;&|`]/ || ($c =~ /[{}]/ && $cx->{word} eq '' && substr($text, $i + 1, 1) =~ /[\s;]/)) {
            $end_command->();
            $i++;
            next;
        }
        if ($c =~ /\s/) { $take->(); $i++; next; }
        $cx->{word} .= $c;
        $i++;
    }
    $take->();
}

# --- Rust ----------------------------------------------------------------------------------

my @rust = map { files_under($_, qr/\.rs$/) } ('tests', 'benches');
my @python = map { files_under($_, qr/\.py$/) } ('tests', 'benches');
my @shell = grep { !$INSTALLERS{$_} } map { files_under($_, qr/\.sh$/) } ('tests', 'benches');

# Helpers that run the program named by their first, &str argument: fn have(tool: &str)
# { ... Command::new(tool) ... }, fn run(cmd: &str, args: ...), or `command -v {tool}`.
my %helpers;
my %texts = map { $_ => slurp($_) } @rust;
for my $file (@rust) {
    my $text = $texts{$file};
    while ($text =~ /fn\s+(\w+)\s*\(\s*(\w+)\s*:\s*&str\s*[,)][^{]*\{/g) {
        my ($name, $param) = ($1, $2);
        my $body = substr($text, pos($text), 600);
        $body =~ s/\n\}\n.*//s;
        $helpers{$name} = $param
            if $body =~ /Command::new\(\s*\Q$param\E\s*\)|command -v \{\Q$param\E\}/;
    }
}

for my $file (@rust) {
    my $text = $texts{$file};
    while ($text =~ /Command::new\(\s*([^)]*?)\s*\)/g) {
        my ($arg, $at) = ($1, $-[0]);
        my $where = "$file:" . line_of($text, $at);
        if ($arg =~ /^"([^"]+)"$/) {
            my $program = $1;
            note('command', $program =~ m{^/} ? $program : $program =~ s{.*/}{}r, $where);
            my $tail = substr($text, $at, 1500);
            $tail =~ s/;\s*\n.*//s;    # this statement only
            if ($WRAPPER{$program =~ s{.*/}{}r}) {
                # timeout 30 python3 ...: the first argument that is a program name
                for my $a ($tail =~ /\.args?\(\s*\[?\s*"([^"]*)"/g) {
                    next if $a =~ /^-|^\d+[smhd]?$/;
                    note('command', $a, $where);
                    last;
                }
            }
            if ($program =~ /(^|\/)(ba)?sh$/ && $tail =~ /"-c"\s*\)?\s*\.?\s*(?:arg\()?\s*(?:&?format!\()?\s*"((?:[^"\\]|\\.)*)"/) {
                my $snippet = $1;
                $snippet =~ s/\\"/"/g;
                $snippet =~ s/\{\w*\}/x/g;    # format! holes
                shell_commands($snippet, $file, line_of($text, $at));
            }
        } elsif ($arg =~ /^env!\("CARGO_BIN_EXE_/) {
            # markgate itself
        } elsif (grep { $arg eq $_ } values %helpers) {
            # a helper's parameter; its callers are read below
        } else {
            push @errors, "$where: cannot tell which program Command::new($arg) runs; name it with a literal";
        }
    }
    for my $helper (keys %helpers) {
        while ($text =~ /\b\Q$helper\E\(\s*"([^"]+)"\s*[,)]/g) {
            note('command', $1, "$file:" . line_of($text, $-[0]));
        }
    }
    # Python snippets: every `import` in a Rust file is inside a Python string.
    if ($text =~ /"python3"/) {
        python_imports($text, "$file:" . line_of($text, $-[0]));
    }
}

for my $file (@python) {
    python_imports(slurp($file), "$file:1");
}
for my $file (@shell) {
    shell_commands(slurp($file), $file, 1);
}

# Capabilities: a file that runs the program and uses the feature.
for my $cap (@CAPABILITIES) {
    my ($name, $program, $pattern) = @$cap;
    for my $file (@rust, @shell) {
        my $text = $texts{$file} // slurp($file);
        next unless $text =~ /\b\Q$program\E\b/ && $text =~ $pattern;
        note('capability', $name, "$file:" . line_of($text, $-[0]));
        last;
    }
}

if (@errors) {
    print STDERR "tools_used.pl: $_\n" for @errors;
    exit 2;
}

my @items = sort {
    my ($ka, $na) = split /\t/, $a;
    my ($kb, $nb) = split /\t/, $b;
    ($ka cmp $kb) || ($na cmp $nb)
} keys %found;

unless ($check) {
    for my $item (@items) {
        my ($kind, $name) = split /\t/, $item;
        printf "%-10s %-30s %s\n", $kind, $name, $found{$item};
    }
    exit 0;
}

my %cap_check = map { $_->[0] => [$_->[3], $_->[4]] } @CAPABILITIES;
my @missing;
for my $item (@items) {
    my ($kind, $name) = split /\t/, $item;
    my $ok;
    my $why;
    if ($kind eq 'command') {
        $ok = $name =~ m{^/} ? -x $name : system('sh', '-c', 'command -v "$1" >/dev/null 2>&1', 'sh', $name) == 0;
        $why = "command $name not found";
    } elsif ($kind eq 'python') {
        $ok = system('sh', '-c', 'python3 -c "import $1" >/dev/null 2>&1', 'sh', $name) == 0;
        $why = "python3 cannot import $name";
    } else {
        $ok = system('sh', '-c', $cap_check{$name}[0]) == 0;
        $why = $cap_check{$name}[1];
    }
    printf "%-4s %-10s %s\n", $ok ? 'ok' : 'MISSING', $kind, $name;
    push @missing, "$why (used at $found{$item})" unless $ok;
}
if (@missing) {
    print STDERR "missing for the tests:\n";
    print STDERR "  $_\n" for @missing;
    exit 1;
}
exit 0;
