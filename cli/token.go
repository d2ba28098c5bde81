package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/abacus-dev/abacus/auth"
)

func (a *app) tokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Make access tokens for abacusd --auth-tokens",
		Args:  noSubcommand,
		RunE:  showHelp,
	}
	var name string
	var grants []string
	newCmd := &cobra.Command{
		Use:   "new --name NAME --grant NAMESPACES:RIGHTS [--grant ...]",
		Short: "Print a fresh random access token, and its entry for the tokens file",
		Long: `Print a fresh random access token (256 bits) on stdout, and on stderr the
entry to paste under "tokens:" in the file abacusd reads with --auth-tokens.
The file keeps only the token's SHA-256: the token itself is shown once, here.

A grant is NAMESPACES:RIGHTS, each a comma-separated list: namespaces are
exact names or prefixes ending in * ("*" alone: every namespace), rights are
read, write and admin.`,
		Example: `  abacus token new --name ingest --grant 'views,exp_*:read,write' >ingest.token 2>>tokens.yaml`,
		Args:    usageArgs(cobra.ExactArgs(0)),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return usagef(cmd, "--name is required")
			}
			if len(grants) == 0 {
				return usagef(cmd, "at least one --grant is required, e.g. --grant 'views,exp_*:read,write'")
			}
			e := auth.Entry{Name: name}
			for _, g := range grants {
				gr, err := auth.ParseGrant(g)
				if err != nil {
					return usagef(cmd, "--grant: %v", err)
				}
				e.Grants = append(e.Grants, gr)
			}
			tok, hash := auth.NewToken()
			e.SHA256 = hash
			entry, err := auth.EntryYAML(e)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintln(a.stdout, tok); err != nil {
				return err
			}
			_, err = fmt.Fprint(a.stderr, entry)
			return err
		},
	}
	newCmd.Flags().StringVar(&name, "name", "", "the token's name, shown in logs and metrics")
	newCmd.Flags().StringArrayVar(&grants, "grant", nil, "NAMESPACES:RIGHTS, e.g. 'views,exp_*:read,write' (repeatable)")
	cmd.AddCommand(newCmd)
	return cmd
}
