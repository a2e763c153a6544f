//! The terraform module (terraform/) against the repository it deploys, read with a real HCL
//! parser: every table DDL of sql/ and every view of views/ is created, each view after what it
//! reads, and every environment variable a Cloud Run container gets is one `gma` reads.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use gma_testkit::repo_root;
use hcl::{Block, Body, Expression, ObjectKey, TraversalOperator};

/// The module's top-level blocks: its locals by name and its resources.
struct Module {
    locals: BTreeMap<String, Expression>,
    resources: Vec<Resource>,
}

/// A `resource "TYPE" "NAME" { ... }` block.
struct Resource {
    kind: String,
    name: String,
    body: Body,
}

impl Module {
    /// Parses every .tf file of terraform/ and its subfolders (each must parse), and collects
    /// the locals and resources of terraform/ itself (the module; the examples use it).
    fn load() -> Module {
        let root = repo_root().join("terraform");
        let mut files = Vec::new();
        tf_files(&root, &mut files);
        assert!(
            files.iter().any(|f| f.starts_with(root.join("examples"))),
            "terraform/examples/ has no .tf file: the module needs a root that uses it"
        );
        let mut module = Module {
            locals: BTreeMap::new(),
            resources: Vec::new(),
        };
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let body = hcl::parse(&text)
                .unwrap_or_else(|e| panic!("{} is not valid HCL: {e}", file.display()));
            if file.parent() != Some(root.as_path()) {
                continue;
            }
            for block in body.blocks() {
                match block.identifier.as_str() {
                    "locals" => {
                        for attribute in block.body.attributes() {
                            let previous = module
                                .locals
                                .insert(attribute.key.to_string(), attribute.expr.clone());
                            assert!(
                                previous.is_none(),
                                "local.{} is defined twice",
                                attribute.key
                            );
                        }
                    }
                    "resource" => {
                        let labels: Vec<&str> = block.labels.iter().map(|l| l.as_str()).collect();
                        module.resources.push(Resource {
                            kind: labels[0].to_owned(),
                            name: labels[1].to_owned(),
                            body: block.body.clone(),
                        });
                    }
                    _ => {}
                }
            }
        }
        module
    }

    /// A local that must be a list of plain strings.
    fn string_list(&self, name: &str) -> Vec<String> {
        let expr = self
            .locals
            .get(name)
            .unwrap_or_else(|| panic!("terraform/ defines no local.{name}"));
        let Expression::Array(items) = expr else {
            panic!("local.{name} must be a list of names written out, not {expr:?}");
        };
        items
            .iter()
            .map(|item| match item {
                Expression::String(s) => s.clone(),
                other => panic!("local.{name} holds {other:?}, not a plain string"),
            })
            .collect()
    }

    fn resource(&self, kind: &str, name: &str) -> &Resource {
        self.resources
            .iter()
            .find(|r| r.kind == kind && r.name == name)
            .unwrap_or_else(|| panic!("terraform/ has no resource {kind}.{name}"))
    }

    /// The keys of the object an expression builds: an object literal, a `local.NAME` holding
    /// one, `merge(...)` of such, or a `for` expression over one (a filter keeps a subset).
    fn object_keys(&self, expr: &Expression) -> BTreeSet<String> {
        match expr {
            Expression::Object(object) => object
                .keys()
                .map(|key| match key {
                    ObjectKey::Identifier(id) => id.to_string(),
                    ObjectKey::Expression(Expression::String(s)) => s.clone(),
                    other => panic!("object key {other:?} is not a plain name"),
                })
                .collect(),
            Expression::Traversal(traversal) => {
                let name = local_name(expr).unwrap_or_else(|| {
                    panic!("{traversal:?} is not local.NAME: write env names where a test can read them")
                });
                let value = self
                    .locals
                    .get(&name)
                    .unwrap_or_else(|| panic!("no local.{name}"));
                self.object_keys(value)
            }
            Expression::FuncCall(call) if call.name.name.as_str() == "merge" => call
                .args
                .iter()
                .flat_map(|arg| self.object_keys(arg))
                .collect(),
            Expression::ForExpr(for_expr) => self.object_keys(&for_expr.collection_expr),
            Expression::Parenthesis(inner) => self.object_keys(inner),
            other => panic!("cannot tell the keys of {other:?}"),
        }
    }
}

/// `local.NAME` → NAME.
fn local_name(expr: &Expression) -> Option<String> {
    let Expression::Traversal(traversal) = expr else {
        return None;
    };
    match (&traversal.expr, traversal.operators.as_slice()) {
        (Expression::Variable(var), [TraversalOperator::GetAttr(name)])
            if var.as_str() == "local" =>
        {
            Some(name.to_string())
        }
        _ => None,
    }
}

/// The locals an expression reads directly or through function calls: `toset(local.x)` → x.
fn locals_read(expr: &Expression) -> Vec<String> {
    match expr {
        Expression::Traversal(_) => local_name(expr).into_iter().collect(),
        Expression::FuncCall(call) => call.args.iter().flat_map(locals_read).collect(),
        Expression::Parenthesis(inner) => locals_read(inner),
        Expression::ForExpr(for_expr) => locals_read(&for_expr.collection_expr),
        _ => Vec::new(),
    }
}

/// Every `a.b.c` traversal in an expression, as text (for depends_on lists).
fn traversals(expr: &Expression) -> Vec<String> {
    match expr {
        Expression::Array(items) => items.iter().flat_map(traversals).collect(),
        Expression::Traversal(traversal) => {
            let mut text = match &traversal.expr {
                Expression::Variable(var) => var.to_string(),
                other => format!("{other:?}"),
            };
            for op in &traversal.operators {
                if let TraversalOperator::GetAttr(name) = op {
                    text.push('.');
                    text.push_str(name);
                }
            }
            vec![text]
        }
        _ => Vec::new(),
    }
}

fn tf_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() && !name.starts_with('.') {
            tf_files(&path, out);
        } else if name.ends_with(".tf") {
            out.push(path);
        }
    }
}

fn attribute<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
    body.attributes()
        .find(|a| a.key.as_str() == key)
        .map(|a| &a.expr)
}

/// The `.sql` files of a folder, by name without the extension.
fn sql_files(dir: &Path) -> BTreeMap<String, String> {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| {
        panic!(
            "{} cannot be read ({e}); the terraform module creates one view per file there",
            dir.display()
        )
    });
    entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .map(|path| {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect()
}

/// The tables and views a SQL file reads, written `${dataset}NAME`.
fn dataset_references(sql: &str) -> BTreeSet<String> {
    sql.match_indices("${dataset}")
        .map(|(at, placeholder)| {
            sql[at + placeholder.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

/// The `${...}` placeholders of a SQL file.
fn placeholders(sql: &str) -> BTreeSet<String> {
    sql.match_indices("${")
        .filter_map(|(at, _)| {
            let rest = &sql[at + 2..];
            rest.find('}').map(|end| rest[..end].to_owned())
        })
        .collect()
}

#[test]
fn every_table_ddl_in_sql_is_created() {
    let module = Module::load();
    let listed: BTreeSet<String> = module.string_list("tables").into_iter().collect();
    let ddl: BTreeSet<String> = sql_files(&repo_root().join("sql"))
        .into_iter()
        .filter(|(_, text)| text.to_uppercase().contains("CREATE TABLE"))
        .map(|(name, _)| name)
        .collect();
    assert!(
        ddl.contains("events"),
        "sql/events.sql should be a CREATE TABLE file"
    );
    assert_eq!(
        listed, ddl,
        "local.tables in terraform/locals.tf must name exactly the CREATE TABLE files of sql/"
    );
    let owned: BTreeSet<String> = gma_pipeline::sql::TABLES
        .iter()
        .map(|table| table.name.to_owned())
        .collect();
    assert_eq!(
        listed, owned,
        "local.tables must name the tables gma creates itself (pipeline/src/sql.rs TABLES)"
    );
    let jobs = module.resource("google_bigquery_job", "table");
    let for_each = attribute(&jobs.body, "for_each").expect("google_bigquery_job.table for_each");
    assert_eq!(
        locals_read(for_each),
        ["tables"],
        "google_bigquery_job.table must run once per local.tables entry"
    );
}

#[test]
fn every_view_is_created_in_a_layer_after_what_it_reads() {
    let module = Module::load();
    let views = sql_files(&repo_root().join("views"));
    assert!(!views.is_empty(), "views/ holds no .sql file");
    let tables: BTreeSet<String> = module.string_list("tables").into_iter().collect();

    // The layers in order (local.view_layers), and each view's layer (local.views_LAYER).
    let layer_names = module.string_list("view_layers");
    assert!(!layer_names.is_empty(), "local.view_layers is empty");
    let mut layer_of: BTreeMap<String, usize> = BTreeMap::new();
    for (index, layer) in layer_names.iter().enumerate() {
        for name in module.string_list(&format!("views_{layer}")) {
            if let Some(other) = layer_of.insert(name.clone(), index) {
                panic!(
                    "view {name} is in layers {} and {layer}",
                    layer_names[other]
                );
            }
        }
    }

    let files: BTreeSet<&String> = views.keys().collect();
    let listed: BTreeSet<&String> = layer_of.keys().collect();
    let missing: Vec<_> = files.difference(&listed).collect();
    let extra: Vec<_> = listed.difference(&files).collect();
    assert!(
        missing.is_empty(),
        "views/ files in no local.views_LAYER of terraform/locals.tf: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "local.views_LAYER names views with no file in views/: {extra:?}"
    );

    // `gma views apply` applies the same files in its own order: both must agree on layers.
    for view in gma_pipeline::views::VIEWS {
        assert_eq!(
            layer_names.get(layer_of[view.name]).map(String::as_str),
            Some(view.layer.name()),
            "view {} is in layer {} for gma (pipeline/src/views.rs) but not in terraform",
            view.name,
            view.layer.name()
        );
    }

    let known = [
        "dataset",
        "events_table",
        "incident_labels",
        "production_environments",
    ];
    for (name, sql) in &views {
        let layer = layer_of[name];
        for read in dataset_references(sql) {
            match layer_of.get(&read) {
                Some(&read_layer) => assert!(
                    read_layer < layer,
                    "view {name} (layer {}) reads view {read} (layer {}): move {name} to a later layer",
                    layer_names[layer],
                    layer_names[read_layer]
                ),
                None => assert!(
                    tables.contains(&read),
                    "view {name} reads ${{dataset}}{read}, which is neither a table of local.tables nor a view"
                ),
            }
        }
        // templatefile() renders the files: any other ${...} or a %{ directive would break it.
        for placeholder in placeholders(sql) {
            assert!(
                known.contains(&placeholder.as_str()),
                "views/{name}.sql has ${{{placeholder}}}; terraform's templatefile knows only {known:?}"
            );
        }
        assert!(
            !sql.contains("%{"),
            "views/{name}.sql contains %{{, a template directive for terraform's templatefile"
        );
    }

    // Each layer's resource: the event views are typed tables, made by DDL jobs; the others
    // are views.
    let resource_of = |layer: &str| {
        if layer == "events" {
            ("google_bigquery_job", "typed_table".to_owned())
        } else {
            ("google_bigquery_table", format!("views_{layer}"))
        }
    };
    for (index, layer) in layer_names.iter().enumerate() {
        let (kind, name) = resource_of(layer);
        let resource = module.resource(kind, &name);
        let for_each = attribute(&resource.body, "for_each")
            .unwrap_or_else(|| panic!("{kind}.{name} has no for_each"));
        assert_eq!(
            locals_read(for_each),
            [format!("views_{layer}")],
            "{kind}.{name} must be for_each over local.views_{layer}"
        );
        let depends: Vec<String> = attribute(&resource.body, "depends_on")
            .map(traversals)
            .unwrap_or_default();
        assert!(
            depends.contains(&"google_bigquery_job.table".to_owned()),
            "{kind}.{name} must depend on the table DDL jobs: {depends:?}"
        );
        if index > 0 && layer != "events" {
            let (previous_kind, previous_name) = resource_of(&layer_names[index - 1]);
            let previous = format!("{previous_kind}.{previous_name}");
            assert!(
                depends.contains(&previous),
                "{kind}.{name} must depend on {previous}: {depends:?}"
            );
        }
    }
}

/// One container of a Cloud Run resource: the gma subcommand it runs and what it is given.
struct Container {
    resource: String,
    args: Vec<String>,
    env: BTreeSet<String>,
}

fn containers(module: &Module, resource: &Resource, body: &Body, out: &mut Vec<Container>) {
    for block in body.blocks() {
        if block.identifier.as_str() == "containers" {
            out.push(container(module, resource, block));
        } else {
            containers(module, resource, &block.body, out);
        }
    }
}

fn container(module: &Module, resource: &Resource, block: &Block) -> Container {
    let name = format!("{}.{}", resource.kind, resource.name);
    let args = match attribute(&block.body, "args") {
        Some(Expression::Array(items)) => items
            .iter()
            .map(|item| match item {
                Expression::String(s) => s.clone(),
                other => panic!("{name}: args must be plain strings, not {other:?}"),
            })
            .collect(),
        other => panic!("{name}: containers needs args = [\"SUBCOMMAND\", ...], not {other:?}"),
    };
    let mut env = BTreeSet::new();
    for inner in block.body.blocks() {
        match inner.identifier.as_str() {
            "env" => match attribute(&inner.body, "name") {
                Some(Expression::String(s)) => {
                    env.insert(s.clone());
                }
                other => {
                    panic!("{name}: an env block's name must be a plain string, not {other:?}")
                }
            },
            "dynamic" if inner.labels.first().map(|l| l.as_str()) == Some("env") => {
                let for_each = attribute(&inner.body, "for_each")
                    .unwrap_or_else(|| panic!("{name}: dynamic \"env\" without for_each"));
                env.extend(module.object_keys(for_each));
            }
            _ => {}
        }
    }
    Container {
        resource: name,
        args,
        env,
    }
}

/// The gma subcommand a container runs: its args up to the first flag.
fn command(container: &Container) -> Vec<&str> {
    container
        .args
        .iter()
        .map(String::as_str)
        .take_while(|arg| !arg.starts_with("--"))
        .collect()
}

fn help_of(subcommand: &[&str]) -> String {
    // A clean environment: clap prints the value of a set variable into the help.
    let output = Command::new(crate::support::gma())
        .args(subcommand)
        .arg("--help")
        .env_clear()
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "gma {} --help failed: {}",
        subcommand.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn every_env_var_the_module_sets_is_read_by_the_subcommand_it_runs() {
    let module = Module::load();
    let mut found = Vec::new();
    for resource in &module.resources {
        if resource.kind.starts_with("google_cloud_run_v2_")
            && !resource.kind.ends_with("_iam_member")
        {
            containers(&module, resource, &resource.body, &mut found);
        }
    }
    let subcommands: BTreeSet<String> = found.iter().map(|c| command(c).join(" ")).collect();
    assert_eq!(
        subcommands,
        BTreeSet::from(["leech", "retry", "serve", "views refresh"].map(String::from)),
        "the module should run gma serve, retry, leech and views refresh, one Cloud Run resource each"
    );
    for container in &found {
        let subcommand = command(container).join(" ");
        let help = help_of(&command(container));
        assert!(
            container.env.len() > 3,
            "{}: only {:?} found; the test reads env blocks and dynamic \"env\" over locals",
            container.resource,
            container.env
        );
        for name in &container.env {
            assert_ne!(
                name, "PORT",
                "{}: Cloud Run sets PORT itself and refuses it in env",
                container.resource
            );
            assert!(
                help.contains(&format!("[env: {name}="))
                    || help.contains(&format!("[env: {name}]")),
                "{} sets {name}, which `gma {subcommand} --help` does not list as [env: {name}]: \
                 the deployment and the code disagree",
                container.resource
            );
        }
        for flag in container.args[1..].iter().filter(|a| a.starts_with("--")) {
            let flag = flag.split('=').next().unwrap_or(flag);
            assert!(
                help.contains(flag),
                "{} passes {flag}, which `gma {subcommand} --help` does not list",
                container.resource
            );
        }
    }
}

#[test]
fn the_terraform_test_sees_a_misspelt_env_var() {
    // The check above would pass vacuously if help_of returned everything: a name gma does not
    // read must be missing from the help.
    let help = help_of(&["serve"]);
    assert!(help.contains("[env: GMA_WEBHOOK_SECRETS]"));
    assert!(
        !help.contains("[env: GMA_WEBHOOK_SECRET]") && !help.contains("[env: GMA_WEBHOOK_SECRET=")
    );
}

#[test]
fn view_references_are_found() {
    let sql = "SELECT * FROM `${dataset}issues` JOIN `${dataset}${events_table}` USING (x) \
               WHERE label IN UNNEST(${incident_labels})";
    assert_eq!(
        dataset_references(sql),
        BTreeSet::from(["issues".to_owned()])
    );
    assert_eq!(
        placeholders(sql),
        BTreeSet::from([
            "dataset".to_owned(),
            "events_table".to_owned(),
            "incident_labels".to_owned()
        ])
    );
}
