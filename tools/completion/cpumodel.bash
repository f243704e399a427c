# bash completion for cpumodel: subcommands, options, model names and feature names.
# Names come from the binary itself (`cpumodel complete commands|models|features|options CMD`),
# so completion follows the catalog, including --models-dir additions.
_cpumodel() {
  local cur prev cmd
  cur="${COMP_WORDS[COMP_CWORD]}"
  prev="${COMP_WORDS[COMP_CWORD-1]}"
  cmd="${COMP_WORDS[1]}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "$(cpumodel complete commands 2>/dev/null) --help --version" -- "$cur"))
    return
  fi
  case "$prev" in
    --cpu|-cpu)
      # MODEL[,+feat][,-feat]: complete the model, then features after a comma.
      if [[ "$cur" == *,* ]]; then
        local head="${cur%,*}," last="${cur##*,}" sign=""
        case "$last" in [+-]*) sign="${last:0:1}"; last="${last:1}" ;; esac
        COMPREPLY=($(compgen -P "$head$sign" -W "$(cpumodel complete features 2>/dev/null)" -- "$last"))
        compopt -o nospace 2>/dev/null
      else
        COMPREPLY=($(compgen -W "$(cpumodel complete models 2>/dev/null)" -- "$cur"))
      fi
      return ;;
    --format)
      COMPREPLY=($(compgen -W "table json cpuid-r kvm qemu libvirt firecracker yaml html" -- "$cur")); return ;;
    --host|--add|--save|--out|--bundle|--kernel|-kernel|--initrd|-initrd|--models-dir|--state|--to)
      COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$(cpumodel complete options "$cmd" 2>/dev/null)" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -F _cpumodel cpumodel
