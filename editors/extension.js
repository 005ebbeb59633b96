// The VS Code side of astra: starts `astra lsp` for .feat files and talks to it over stdio.
// Plain JavaScript, so there is nothing to build; `npm install` fetches vscode-languageclient once.
"use strict";

const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = vscode.workspace.getConfiguration("astra").get("server.command", ["astra", "lsp"]);
  client = new LanguageClient(
    "astra",
    "astra language server",
    { command, args },
    {
      documentSelector: [{ scheme: "file", language: "astra" }, { scheme: "untitled", language: "astra" }],
      // files changed outside the editor (a git checkout, a new astra.lock) are checked again
      synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher("**/{*.feat,astra.lock}") },
    },
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
