# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this doc fragment is PRIVATE to the collection. It can have breaking changes at any time.

from __future__ import annotations


class ModuleDocFragment:
    """Connection and authentication options shared by every module of the collection."""

    DOCUMENTATION = r'''
options:
  tenant_id:
    description:
      - Directory (tenant) id, or a verified domain name of the tenant, such as V(contoso.onmicrosoft.com).
      - Required for O(auth_method=client_secret), O(auth_method=client_certificate) and O(auth_method=workload_identity).
        Not used with O(auth_method=access_token) and O(auth_method=managed_identity).
      - If not set, the environment variables E(AZURE_TENANT_ID) and E(AZURE_TENANT) are read, in that order
        (E(AZURE_TENANT) is what the AWX/Automation Controller Azure credential sets).
    type: str
  client_id:
    description:
      - Application (client) id of the app registration.
      - With O(auth_method=managed_identity), the client id of a user-assigned managed identity; leave it unset for the
        system-assigned identity.
      - If not set, the environment variable E(AZURE_CLIENT_ID) is read.
    type: str
  client_secret:
    description:
      - Client secret (its value, not its id) of the app registration.
      - If not set, the environment variables E(AZURE_CLIENT_SECRET) and E(AZURE_SECRET) are read, in that order.
    type: str
  client_certificate_path:
    description:
      - Path of the app's certificate on the host that runs the module (usually the controller).
      - Either a PEM file holding the RSA private key and the certificate, or a PKCS#12 (C(.pfx)) file.
      - The certificate must be uploaded to the app registration.
      - If not set, the environment variable E(AZURE_CLIENT_CERTIFICATE_PATH) is read.
    type: path
  client_certificate_password:
    description:
      - Password of an encrypted private key in O(client_certificate_path), or of the PKCS#12 file.
      - If not set, the environment variable E(AZURE_CLIENT_CERTIFICATE_PASSWORD) is read.
    type: str
  federated_token_file:
    description:
      - File holding a federated token (a JWT) to exchange for an Entra token, as for workload identity on Kubernetes
        (AWX or Automation Controller on AKS). The app registration needs a matching federated credential.
      - The file is read again on every run, since the platform rotates the token.
      - If not set, the environment variable E(AZURE_FEDERATED_TOKEN_FILE) is read.
    type: path
  access_token:
    description:
      - A Microsoft Graph access token acquired elsewhere (for example with C(az account get-access-token --resource-type ms-graph)).
        No token request is made; O(tenant_id), O(client_id) and the other credentials are not used.
      - The token must be issued for the Graph endpoint of O(cloud) (or O(graph_endpoint)) and hold the needed permissions.
      - If not set, the environment variable E(ENTRA_ACCESS_TOKEN) is read.
    type: str
  auth_method:
    description:
      - How to get the Graph access token.
      - V(auto) picks the first of these that is set, in this order
        O(access_token), O(client_certificate_path), O(client_secret), O(federated_token_file).
        Managed identity is only used when named, because it cannot be detected reliably.
      - V(client_secret) needs O(tenant_id), O(client_id) and O(client_secret).
      - V(client_certificate) needs O(tenant_id), O(client_id) and O(client_certificate_path).
      - V(workload_identity) needs O(tenant_id), O(client_id) and O(federated_token_file).
      - V(managed_identity) uses the managed identity of the host that runs the module (the Azure VM, App Service or
        container, found through E(IDENTITY_ENDPOINT)/E(IDENTITY_HEADER) or the instance metadata service), system-assigned,
        or user-assigned when O(client_id) is set.
      - V(access_token) needs O(access_token).
      - If not set, the environment variable E(ENTRA_AUTH_METHOD) is read.
    type: str
    default: auto
    choices: [auto, client_secret, client_certificate, workload_identity, managed_identity, access_token]
  cloud:
    description:
      - The Microsoft cloud that holds the tenant; it picks the login and Graph hosts.
      - V(public) is the global service (login.microsoftonline.com, graph.microsoft.com), also for Microsoft 365 GCC.
      - V(usgov) is US Government L4 / GCC High (login.microsoftonline.us, graph.microsoft.us).
      - V(usgov_dod) is US Government L5 / DoD (login.microsoftonline.us, dod-graph.microsoft.us).
      - V(china) is Microsoft Azure operated by 21Vianet (login.chinacloudapi.cn, microsoftgraph.chinacloudapi.cn).
      - The names V(AzureCloud), V(AzureUSGovernment) and V(AzureChinaCloud) used by the AWX/Automation Controller Azure
        credential are accepted too. Any other value fails.
      - If not set, the environment variable E(AZURE_CLOUD_ENVIRONMENT) is read.
    type: str
    default: public
  authority_host:
    description:
      - Login host to use instead of the one of O(cloud), as an https URL such as V(https://login.microsoftonline.us).
        A bare host name gets C(https://) in front; a path, query or plain http URL fails.
      - Instance discovery (a call to login.microsoftonline.com that validates the host) is only done for known
        Microsoft login hosts.
      - If not set, the environment variable E(AZURE_AUTHORITY_HOST) is read (the azure-identity variable).
    type: str
  graph_endpoint:
    description:
      - Microsoft Graph root to use instead of the one of O(cloud), as an https URL such as V(https://graph.microsoft.us),
        without the API version. The token is requested for this host (V(<graph_endpoint>/.default)).
      - If not set, the environment variable E(ENTRA_GRAPH_ENDPOINT) is read.
    type: str
  api_version:
    description:
      - Graph API version to call.
    type: str
    default: v1.0
    choices: [v1.0, beta]
  validate_certs:
    description:
      - Whether to verify the TLS certificates of the login and Graph endpoints.
      - Set to V(false) only for tests; the module then warns on every run.
    type: bool
    default: true
  ca_bundle:
    description:
      - PEM file with extra CA certificates to trust for the login and Graph calls (for example of a TLS-inspecting
        proxy), in addition to the default CA store.
      - When set it takes precedence over the E(REQUESTS_CA_BUNDLE) environment variable.
        When it is not set, E(REQUESTS_CA_BUNDLE) (a complete bundle that replaces the default store) is honoured.
    type: path
  timeout:
    description:
      - Seconds to wait for each HTTP request.
    type: int
    default: 30
  max_retries:
    description:
      - How often to retry a Graph call that is throttled (HTTP 429), unavailable (503, 504) or hits a connection error.
      - The wait honours the C(Retry-After) header, otherwise it backs off exponentially with jitter;
        all retries of one call stop after two minutes in total.
    type: int
    default: 5
  token_cache:
    description:
      - Keep the access token in a persistent cache on the host that runs the module, so that the next tasks and the
        other forks of the play for the same tenant and app reuse it instead of asking Entra ID for a new one (and skip
        msal's discovery request too). Each fork of one tenant waits for the first one's token.
      - The cache is one file per login host, tenant, client, Graph endpoint, auth method and credential (a rotated
        secret starts a new file; tenants never share one), in the private folder C(<temp dir>/entra.autopilot-<uid>)
        (mode 0700, the folder of the per-tenant locks), with file mode 0600. It holds access tokens, so treat it as a
        secret; it is never printed. Delete the folder to drop every cached token.
      - A cached token is used until shortly before it expires (usually about an hour), so a permission granted to the
        app in the meantime is seen when the next token is issued.
      - Not used with O(auth_method=access_token).
    type: bool
    default: false
notes:
  - Each option is taken from the task (or C(module_defaults)) first, then from its environment variables in the
    order given. An empty environment variable counts as unset, because AWX exports empty strings for credential
    fields left blank.
  - The secrets (O(client_secret), O(client_certificate_password), O(access_token)) and the acquired token are never
    logged or returned.
requirements:
  - msal
  - requests
'''
