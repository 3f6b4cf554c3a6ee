/**
 * Shell completion generated from the commands themselves (names, options, option values, what positionals are):
 * bash natively, zsh through bashcompinit. Job ids come from `gpulab jobs -q`.
 */
import { type Command, type Completes, GLOBAL_OPTIONS } from '../command';
import { EXIT } from '../exit-codes';

function words(c: Completes | undefined): string {
  if (!c || typeof c === 'string') return '';
  return c.join(' ');
}

function kind(c: Completes | undefined): string {
  if (!c) return 'none';
  return typeof c === 'string' ? c : 'words';
}

export function bashCompletion(commands: readonly Command[]): string {
  const names = commands.map((c) => c.name).join(' ');
  const cases = commands
    .map((c) => {
      const all = { ...c.options, ...GLOBAL_OPTIONS };
      const opts = Object.entries(all)
        .flatMap(([n, o]) => [`--${n}`, ...(o.short ? [`-${o.short}`] : [])])
        .join(' ');
      const valued = Object.entries(all)
        .filter(([, o]) => o.type === 'string')
        .map(([n]) => `--${n}`)
        .join('|');
      const choices = Object.entries(all)
        .filter(([, o]) => o.choices)
        .map(([n, o]) => `        --${n}) COMPREPLY=( $(compgen -W "${o.choices!.join(' ')}" -- "$cur") ); return ;;`)
        .join('\n');
      return [
        `    ${c.name})`,
        `      opts="${opts}"; pos="${kind(c.positionals.completes)}"; posw="${words(c.positionals.completes)}"`,
        '      case "$prev" in',
        ...(choices ? [choices] : []),
        ...(valued ? [`        ${valued}) COMPREPLY=( $(compgen -f -- "$cur") ); return ;;`] : []),
        '      esac ;;',
      ].join('\n');
    })
    .join('\n');
  return `# bash completion for gpulab — load with:  source <(gpulab completion bash)
_gpulab() {
  local cur prev cmd opts pos posw
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  cmd="\${COMP_WORDS[1]}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=( $(compgen -W "${names} --help --version" -- "$cur") ); return
  fi
  case "$cmd" in
${cases}
    *) return ;;
  esac
  if [[ "$cur" == -* ]]; then COMPREPLY=( $(compgen -W "$opts" -- "$cur") ); return; fi
  case "$pos" in
    jobs) COMPREPLY=( $(compgen -W "last $(gpulab jobs -q --limit 50 2>/dev/null)" -- "$cur") ) ;;
    dirs) COMPREPLY=( $(compgen -d -- "$cur") ) ;;
    files) COMPREPLY=( $(compgen -f -- "$cur") ) ;;
    words) COMPREPLY=( $(compgen -W "$posw" -- "$cur") ) ;;
  esac
}
complete -o filenames -o bashdefault -F _gpulab gpulab
`;
}

export function zshCompletion(commands: readonly Command[]): string {
  return `# zsh completion for gpulab — load with:  source <(gpulab completion zsh)
autoload -U +X compinit && compinit
autoload -U +X bashcompinit && bashcompinit
${bashCompletion(commands)}`;
}

export function completionCommand(all: () => readonly Command[]): Command {
  return {
    name: 'completion',
    summary: 'print a shell completion script (bash or zsh)',
    usage: 'bash|zsh',
    details: 'Add to ~/.bashrc:  source <(gpulab completion bash)\nAdd to ~/.zshrc:   source <(gpulab completion zsh)',
    options: {},
    positionals: { min: 1, max: 1, completes: ['bash', 'zsh'] },
    examples: ['source <(gpulab completion bash)', 'gpulab completion zsh > ~/.zfunc/gpulab.zsh'],
    async run(ctx, args) {
      const shell = args.positionals[0];
      if (shell !== 'bash' && shell !== 'zsh') {
        ctx.note(`unknown shell ${JSON.stringify(shell)}: use bash or zsh`, true);
        return EXIT.USAGE;
      }
      ctx.io.stdout.write(shell === 'bash' ? bashCompletion(all()) : zshCompletion(all()));
      return EXIT.OK;
    },
  };
}
